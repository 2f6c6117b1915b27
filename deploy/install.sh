#!/usr/bin/env bash
# Install (or upgrade) Remora Admin on a Debian 12 server from a bundle made by
# deploy/build-bundle.sh (`make dist`), as root:
#
#   tar xzf remora-admin-VERSION-pyX.Y.tar.gz
#   remora-admin-VERSION-pyX.Y/deploy/install.sh --server-name admin.example.org
#
# It installs MariaDB, Redis and the libraries the bundled Python needs (apt), creates the
# `remora` system user, puts the bundled Python in /opt/remora/python and a venv with the
# console in /opt/remora/venv (from the bundle's wheelhouse: no PyPI, no compiler), writes
# /etc/remora/remora.env on the first install (secrets generated; kept on upgrades), creates
# the database and its user, migrates, collects the static files, installs the systemd units
# and /usr/local/bin/remora-admin, and starts the web server, the workers and the ticker.
# Running it again with a newer bundle upgrades in place; the settings and data stay.
#
# Options:
#   --server-name NAME  the name the console is reached by (first install: ALLOWED_HOSTS,
#                       CSRF_TRUSTED_ORIGINS, REMORA_MAIL_FROM); default: hostname -f
#   --workers N         job workers to run (remora-worker@1..N), default 2
#   --set KEY=VALUE     set KEY in /etc/remora/remora.env (repeatable; KEY from the template)
#   --no-apt            skip apt-get (the packages are installed already)
#
# Workers on more machines (README: Workers on more machines):
#   --allow-workers-from CIDR  on the console's machine: MariaDB and Redis also listen on this
#                       machine's address in CIDR (an IPv4 network, e.g. 10.0.0.0/24), Redis
#                       with a password, MariaDB with a `remora` user for that network that may
#                       read and write rows but not change tables; writes /etc/remora/worker.env
#                       (remora.env pointing at this machine) for the workers' machines
#   --worker-only       on a worker's machine: only the bundled Python, the venv and the worker
#                       units; no MariaDB, Redis, web server or ticker
#   --env-file FILE     with --worker-only: the worker.env copied from the console's machine,
#                       installed as /etc/remora/remora.env (required on the first install)
set -euo pipefail

PREFIX=/opt/remora
ETC=/etc/remora
VAR=/var/lib/remora
ENV_FILE=$ETC/remora.env
UNITS=(remora-web.service remora-ticker.service remora-worker@.service)
WORKER_ENV=$ETC/worker.env
MARIADB_WORKERS_CNF=/etc/mysql/mariadb.conf.d/90-remora-workers.cnf
REDIS_WORKERS_CONF=/etc/redis/remora-workers.conf
# What the bundled Python links against (ldd of its modules); MariaDB and Redis on the console.
PYTHON_PACKAGES=(ca-certificates libssl3 libffi8 libsqlite3-0 zlib1g libbz2-1.0 liblzma5
  libreadline8 libncursesw6 libtinfo6 libexpat1 libuuid1)
SERVER_PACKAGES=(mariadb-server redis-server)

die() { echo "install: $*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

bundle=$(cd "$(dirname "$0")/.." && pwd)
server_name=
workers=2
apt=1
sets=()
workers_from=
worker_only=0
env_file=
while [ $# -gt 0 ]; do
  case $1 in
  --server-name) server_name=${2:-}; shift 2 ;;
  --workers) workers=${2:-}; shift 2 ;;
  --set) sets+=("${2:-}"); shift 2 ;;
  --no-apt) apt=0; shift ;;
  --allow-workers-from) workers_from=${2:-}; shift 2 ;;
  --worker-only) worker_only=1; shift ;;
  --env-file) env_file=${2:-}; shift 2 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument: $1 (--help lists them)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run it as root"
if [ ! -x "$bundle/python/bin/python3" ] || [ ! -d "$bundle/wheelhouse" ]; then
  die "$bundle is not a bundle (deploy/build-bundle.sh makes one)"
fi
[ -n "$server_name" ] || server_name=$(hostname -f 2>/dev/null || hostname)
[[ $server_name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] ||
  die "--server-name must be a host name, not '$server_name'"
[ -z "$workers_from" ] || [[ $workers_from =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] ||
  die "--allow-workers-from must be an IPv4 network like 10.0.0.0/24, not '$workers_from'"
[[ $workers =~ ^[1-9][0-9]?$ ]] || die "--workers must be a number from 1 to 99, not '$workers'"
for pair in ${sets[@]+"${sets[@]}"}; do
  [[ $pair =~ ^[A-Z][A-Z0-9_]*=[^[:cntrl:]]*$ ]] || die "--set must be KEY=VALUE, not '$pair'"
  grep -Eq "^#? ?${pair%%=*}=" "$bundle/deploy/remora.env.example" ||
    die "--set ${pair%%=*}: no such setting in remora.env.example"
done
if [ "$worker_only" = 1 ]; then
  [ -z "$workers_from" ] || die "--allow-workers-from is for the console's machine, not with --worker-only"
  if [ -n "$env_file" ]; then
    { [ -f "$env_file" ] && [ -r "$env_file" ]; } || die "--env-file: cannot read '$env_file'"
    { grep -Eq '^DATABASE_URL=mysql://[^@]+@[^/]+/' "$env_file" &&
      grep -Eq '^REDIS_URL=redis' "$env_file"; } ||
      die "--env-file: '$env_file' has no DATABASE_URL or REDIS_URL (copy /etc/remora/worker.env from the console's machine)"
  elif [ ! -e "$ENV_FILE" ]; then
    die "--worker-only needs --env-file FILE on the first install: the console's /etc/remora/worker.env"
  fi
else
  [ -z "$env_file" ] || die "--env-file goes with --worker-only (the console writes its own settings)"
fi

if [ -n "$workers_from" ]; then
  # This machine's IPv4 address in that network: where the workers will find MariaDB and Redis.
  advertise=$("$bundle/python/bin/python3" - "$workers_from" <<'PY'
import ipaddress
import subprocess
import sys

try:
    network = ipaddress.ip_network(sys.argv[1], strict=True)
except ValueError as exc:
    sys.exit(f"install: --allow-workers-from must be an IPv4 network like 10.0.0.0/24: {exc}")
if network.version != 4 or network.prefixlen < 8:
    sys.exit("install: --allow-workers-from must be an IPv4 network of at most a /8")
out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
mine = [ipaddress.ip_address(line.split()[3].split("/")[0]) for line in out.splitlines()]
found = [a for a in mine if a in network]
if not found:
    sys.exit(f"install: no address of this machine is in {network}: the workers could not reach it")
print(found[0], network.network_address, network.netmask)
PY
  )
  read -r advertise worker_network worker_netmask <<<"$advertise"
fi
if [ "$worker_only" = 1 ]; then
  packages=("${PYTHON_PACKAGES[@]}")
else
  packages=("${SERVER_PACKAGES[@]}" "${PYTHON_PACKAGES[@]}")
fi
if [ "$apt" = 1 ]; then
  say "apt: ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
fi
if [ "$worker_only" = 0 ]; then
  systemctl enable --now mariadb.service redis-server.service >/dev/null 2>&1 ||
    die "MariaDB or Redis does not start: systemctl status mariadb redis-server"
fi

say "the remora user and $VAR"
getent passwd remora >/dev/null ||
  useradd --system --user-group --home-dir "$VAR" --shell /usr/sbin/nologin remora
install -d -o remora -g remora -m 0750 "$VAR"
install -d -o root -g remora -m 0750 "$ETC"
install -d -m 0755 "$PREFIX"

# An upgrade replaces the interpreter and the venv: stop what runs from them first.
running=$(systemctl list-units --plain --no-legend --state=active 'remora-*' | awk '{print $1}')
if [ -n "$running" ]; then
  say "stopping $(echo "$running" | tr '\n' ' ')"
  # shellcheck disable=SC2086 # one unit name per word
  systemctl stop $running
fi

say "Python in $PREFIX/python, the console in $PREFIX/venv"
rm -rf "$PREFIX/python.new"
cp -a "$bundle/python" "$PREFIX/python.new"
rm -rf "$PREFIX/python"
mv "$PREFIX/python.new" "$PREFIX/python"
"$PREFIX/python/bin/python3" -m venv --clear "$PREFIX/venv"
pip=("$PREFIX/venv/bin/pip" install --quiet --disable-pip-version-check --no-index
  --find-links "$bundle/wheelhouse")
"${pip[@]}" --upgrade pip
"${pip[@]}" remora-admin
python=$PREFIX/venv/bin/python

say "settings: $ENV_FILE"
if [ -n "$env_file" ]; then
  install -o root -g remora -m 0640 "$env_file" "$ENV_FILE.new"
  mv "$ENV_FILE.new" "$ENV_FILE"
  echo "    copied from $env_file"
elif [ ! -e "$ENV_FILE" ]; then
  "$python" - "$bundle/deploy/remora.env.example" "$server_name" >"$ENV_FILE.new" <<'PY'
import secrets
import sys

from cryptography.fernet import Fernet

template, name = sys.argv[1], sys.argv[2]
values = {
    "SECRET_KEY": secrets.token_urlsafe(48),
    "ALLOWED_HOSTS": name,
    "CSRF_TRUSTED_ORIGINS": f"https://{name}",
    "DATABASE_URL": f"mysql://remora:{secrets.token_hex(16)}@127.0.0.1:3306/remora",
    "REMORA_CREDENTIALS_KEY": Fernet.generate_key().decode(),
    "REMORA_MAIL_FROM": f"remora-admin@{name}",
}
for line in open(template):
    key = line.split("=", 1)[0]
    if not line.startswith("#") and key in values:
        line = f"{key}={values[key]}\n"
    sys.stdout.write(line)
PY
  chown root:remora "$ENV_FILE.new"
  chmod 0640 "$ENV_FILE.new"
  mv "$ENV_FILE.new" "$ENV_FILE"
  echo "    written with new secrets; keep a copy of REMORA_CREDENTIALS_KEY somewhere safe"
else
  echo "    kept as it is"
fi
set_setting() { # FILE KEY=VALUE: the key's line replaced (or added), the rest as it was
  "$python" - "$1" "$2" <<'PY'
import sys

path, pair = sys.argv[1], sys.argv[2]
key = pair.split("=", 1)[0]
lines = open(path).read().splitlines()
found = False
for i, line in enumerate(lines):
    if line.split("=", 1)[0].lstrip("# ") == key and "=" in line:
        lines[i] = "" if found else pair
        found = True
if not found:
    lines.append(pair)
open(path, "w").write("\n".join(lines) + "\n")
PY
}
for pair in ${sets[@]+"${sets[@]}"}; do
  set_setting "$ENV_FILE" "$pair"
  echo "    ${pair%%=*}=..."
done

setting() { grep -E "^$1=" "$ENV_FILE" | tail -n 1 | cut -d= -f2-; }

if [ "$worker_only" = 0 ]; then
  say "the database"
  # MariaDB on this machine: the database and its user, with the password from DATABASE_URL.
  db=$("$python" - "$(setting DATABASE_URL)" <<'PY'
import re
import sys
from urllib.parse import unquote, urlsplit

parts = urlsplit(sys.argv[1])
fields = [parts.hostname or "", unquote(parts.username or ""), unquote(parts.password or ""),
          parts.path.lstrip("/")]
if parts.scheme != "mysql":
    fields = ["-", "-", "-", "-"]  # not MariaDB: the admin manages that database
elif not all(re.fullmatch(r"[A-Za-z0-9._~-]+", f) for f in fields):
    sys.exit("install: DATABASE_URL: the host, user, password and database name must be "
             "letters, digits and . _ ~ - (create the database yourself otherwise)")
print(*fields)
PY
  )
  read -r db_host db_user db_password db_name <<<"$db"
  if [ "$db_host" = 127.0.0.1 ] || [ "$db_host" = localhost ]; then
    mariadb --protocol=socket <<SQL
CREATE DATABASE IF NOT EXISTS \`$db_name\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$db_user'@'localhost' IDENTIFIED BY '$db_password';
CREATE USER IF NOT EXISTS '$db_user'@'127.0.0.1' IDENTIFIED BY '$db_password';
ALTER USER '$db_user'@'localhost' IDENTIFIED BY '$db_password';
ALTER USER '$db_user'@'127.0.0.1' IDENTIFIED BY '$db_password';
GRANT ALL PRIVILEGES ON \`$db_name\`.* TO '$db_user'@'localhost', '$db_user'@'127.0.0.1';
SQL
    echo "    $db_name on this machine, user $db_user"
  else
    [ -z "$workers_from" ] ||
      die "--allow-workers-from: the database is not on this machine (DATABASE_URL names $db_host)"
    echo "    $db_host is not this machine: the database is expected to exist"
  fi
fi

if [ -n "$workers_from" ]; then
  say "MariaDB and Redis for workers in $workers_from: at $advertise"
  # MariaDB: on every address (its users say who gets in); the workers' user reads and writes
  # rows only: tables are the console's (migrate runs there).
  printf '%s\n' "# Written by Remora Admin's install.sh --allow-workers-from $workers_from" \
    "[mysqld]" "bind-address = 0.0.0.0" >"$MARIADB_WORKERS_CNF.new"
  if ! cmp -s "$MARIADB_WORKERS_CNF.new" "$MARIADB_WORKERS_CNF"; then
    mv "$MARIADB_WORKERS_CNF.new" "$MARIADB_WORKERS_CNF"
    systemctl restart mariadb.service
  fi
  rm -f "$MARIADB_WORKERS_CNF.new"
  workers_host="$worker_network/$worker_netmask"
  mariadb --protocol=socket <<SQL
CREATE USER IF NOT EXISTS '$db_user'@'$workers_host' IDENTIFIED BY '$db_password';
ALTER USER '$db_user'@'$workers_host' IDENTIFIED BY '$db_password';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`$db_name\`.* TO '$db_user'@'$workers_host';
SQL
  # Redis: also on this machine's address in that network, with a password (kept if set).
  redis_url=$(setting REDIS_URL)
  redis_password=$("$python" - "$redis_url" <<'PY'
import re
import secrets
import sys
from urllib.parse import unquote, urlsplit

parts = urlsplit(sys.argv[1])
if parts.scheme != "redis" or parts.hostname not in ("127.0.0.1", "localhost"):
    sys.exit(f"install: --allow-workers-from: REDIS_URL must be Redis on this machine, not {sys.argv[1]!r}")
password = unquote(parts.password or "")
if password and not re.fullmatch(r"[A-Za-z0-9._~-]+", password):
    sys.exit("install: REDIS_URL: the password must be letters, digits and . _ ~ -")
print(password or secrets.token_hex(24))
PY
  )
  install -o redis -g redis -m 0640 /dev/null "$REDIS_WORKERS_CONF.new"
  printf '%s\n' "# Written by Remora Admin's install.sh --allow-workers-from $workers_from" \
    "bind 127.0.0.1 -::1 $advertise" "requirepass $redis_password" >"$REDIS_WORKERS_CONF.new"
  grep -qxF "include $REDIS_WORKERS_CONF" /etc/redis/redis.conf ||
    printf '\n%s\n' "include $REDIS_WORKERS_CONF" >>/etc/redis/redis.conf
  if ! cmp -s "$REDIS_WORKERS_CONF.new" "$REDIS_WORKERS_CONF"; then
    mv "$REDIS_WORKERS_CONF.new" "$REDIS_WORKERS_CONF"
    systemctl restart redis-server.service
  fi
  rm -f "$REDIS_WORKERS_CONF.new"
  set_setting "$ENV_FILE" "REDIS_URL=$("$python" - "$redis_url" "$redis_password" <<'PY'
import sys
from urllib.parse import urlsplit

parts = urlsplit(sys.argv[1])
print(parts._replace(netloc=f":{sys.argv[2]}@{parts.hostname}:{parts.port or 6379}").geturl())
PY
  )"
  # The workers' settings: this machine's, with MariaDB and Redis at its address.
  install -o root -g remora -m 0640 "$ENV_FILE" "$WORKER_ENV.new"
  for key in DATABASE_URL REDIS_URL; do
    set_setting "$WORKER_ENV.new" "$key=$(setting "$key" | sed -E "s/@(127\.0\.0\.1|localhost)([:\/])/@$advertise\2/")"
  done
  # The audit log's copy off the box is written from here (the console's record() and the
  # ticker send what the workers recorded too); a worker's own file or /dev/log would be
  # another machine's, so workers send nothing. A remote syslog is the same for all.
  case $(setting REMORA_AUDIT_SINK) in
  syslog:*) ;;
  *) set_setting "$WORKER_ENV.new" "REMORA_AUDIT_SINK=none" ;;
  esac
  mv "$WORKER_ENV.new" "$WORKER_ENV"
  echo "    $WORKER_ENV: copy it to each worker's machine (as root, keep it 0640),"
  echo "    then there: install.sh --worker-only --env-file worker.env"
fi

if [ "$worker_only" = 1 ]; then
  say "the worker unit and /usr/local/bin/remora-admin"
  install -m 0644 "$bundle/deploy/remora-worker@.service" "/etc/systemd/system/remora-worker@.service"
else
  say "units, gunicorn's configuration and /usr/local/bin/remora-admin"
  install -m 0644 "$bundle/deploy/gunicorn.conf.py" "$ETC/gunicorn.conf.py"
  for unit in "${UNITS[@]}"; do
    install -m 0644 "$bundle/deploy/$unit" "/etc/systemd/system/$unit"
  done
fi
install -m 0755 "$bundle/deploy/remora-admin.sh" /usr/local/bin/remora-admin
systemctl daemon-reload

if [ "$worker_only" = 1 ]; then
  say "the console's database and Redis, from here"
  # Migrations are the console's to run: a worker newer than its database waits for it.
  remora-admin migrate --check >/dev/null ||
    die "the database is not at this bundle's version: upgrade the console's machine first (or check DATABASE_URL)"
  remora-admin shell --no-imports -c "from jobs.queue import queue; queue().connection.ping()" ||
    die "Redis does not answer at REDIS_URL (is the console's machine installed with --allow-workers-from?)"
  enabled=()
else
  say "migrate, collectstatic, check --deploy"
  remora-admin migrate --noinput
  remora-admin collectstatic --noinput --clear --verbosity 0
  remora-admin check --deploy
  enabled=(remora-web.service remora-ticker.service)
fi

if [ "$worker_only" = 1 ]; then
  say "starting $workers worker(s)"
else
  say "starting the web server, $workers worker(s) and the ticker"
fi
for n in $(seq "$workers"); do enabled+=("remora-worker@$n.service"); done
systemctl enable --now "${enabled[@]}" 2>/dev/null
for _ in $(seq 60); do
  systemctl is-active --quiet "${enabled[@]}" && break
  sleep 0.5
done
systemctl is-active --quiet "${enabled[@]}" ||
  die "not everything started: systemctl status ${enabled[*]}; journalctl -u 'remora-*'"
echo "Remora Admin is running here: ${enabled[*]}."
if [ "$worker_only" = 0 ]; then
  echo "Next: remora-admin createsuperuser; remora-admin load_topology; a TLS front proxy"
  echo "for https://$server_name/ to $(setting REMORA_WEB_BIND) (README: Install on a server)."
fi
