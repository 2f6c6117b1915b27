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
set -euo pipefail

PREFIX=/opt/remora
ETC=/etc/remora
VAR=/var/lib/remora
ENV_FILE=$ETC/remora.env
UNITS=(remora-web.service remora-ticker.service remora-worker@.service)
# MariaDB and Redis, and what the bundled Python links against (ldd of its modules).
APT_PACKAGES=(mariadb-server redis-server ca-certificates libssl3 libffi8 libsqlite3-0 zlib1g
  libbz2-1.0 liblzma5 libreadline8 libncursesw6 libtinfo6 libexpat1 libuuid1)

die() { echo "install: $*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

bundle=$(cd "$(dirname "$0")/.." && pwd)
server_name=
workers=2
apt=1
sets=()
while [ $# -gt 0 ]; do
  case $1 in
  --server-name) server_name=${2:-}; shift 2 ;;
  --workers) workers=${2:-}; shift 2 ;;
  --set) sets+=("${2:-}"); shift 2 ;;
  --no-apt) apt=0; shift ;;
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
[[ $workers =~ ^[1-9][0-9]?$ ]] || die "--workers must be a number from 1 to 99, not '$workers'"
for pair in ${sets[@]+"${sets[@]}"}; do
  [[ $pair =~ ^[A-Z][A-Z0-9_]*=[^[:cntrl:]]*$ ]] || die "--set must be KEY=VALUE, not '$pair'"
  grep -Eq "^#? ?${pair%%=*}=" "$bundle/deploy/remora.env.example" ||
    die "--set ${pair%%=*}: no such setting in remora.env.example"
done

if [ "$apt" = 1 ]; then
  say "apt: ${APT_PACKAGES[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
fi
systemctl enable --now mariadb.service redis-server.service >/dev/null 2>&1 ||
  die "MariaDB or Redis does not start: systemctl status mariadb redis-server"

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
if [ ! -e "$ENV_FILE" ]; then
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
for pair in ${sets[@]+"${sets[@]}"}; do
  "$python" - "$ENV_FILE" "$pair" <<'PY'
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
  echo "    $pair"
done

say "the database"
# MariaDB on this machine: the database and its user, with the password from DATABASE_URL.
db=$("$python" - "$ENV_FILE" <<'PY'
import re
import sys
from urllib.parse import unquote, urlsplit

url = next(
    (line.split("=", 1)[1].strip() for line in open(sys.argv[1]) if line.startswith("DATABASE_URL=")),
    "",
)
parts = urlsplit(url)
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
  echo "    $db_host is not this machine: the database is expected to exist"
fi

say "units, gunicorn's configuration and /usr/local/bin/remora-admin"
install -m 0644 "$bundle/deploy/gunicorn.conf.py" "$ETC/gunicorn.conf.py"
for unit in "${UNITS[@]}"; do
  install -m 0644 "$bundle/deploy/$unit" "/etc/systemd/system/$unit"
done
install -m 0755 "$bundle/deploy/remora-admin.sh" /usr/local/bin/remora-admin
systemctl daemon-reload

say "migrate, collectstatic, check --deploy"
remora-admin migrate --noinput
remora-admin collectstatic --noinput --clear --verbosity 0
remora-admin check --deploy

say "starting the web server, $workers worker(s) and the ticker"
enabled=(remora-web.service remora-ticker.service)
for n in $(seq "$workers"); do enabled+=("remora-worker@$n.service"); done
systemctl enable --now "${enabled[@]}" 2>/dev/null
for _ in $(seq 60); do
  systemctl is-active --quiet "${enabled[@]}" && break
  sleep 0.5
done
systemctl is-active --quiet "${enabled[@]}" ||
  die "not everything started: systemctl status ${enabled[*]}; journalctl -u 'remora-*'"
echo "Remora Admin is running: ${enabled[*]}."
echo "Next: remora-admin createsuperuser; remora-admin load_topology; a TLS front proxy"
echo "for https://$server_name/ to $(grep -E '^REMORA_WEB_BIND=' "$ENV_FILE" | cut -d= -f2-) (README: Install on a server)."
