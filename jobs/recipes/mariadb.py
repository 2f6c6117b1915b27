"""MariaDB master: install and configure it, back it up, restore it. The shadow replica and its
promotion are in mariadb_replica.py, which shares this module's forms and shell pieces.

Decisions (the issue asks to decide and say why):

- Seeding the replica uses a dedicated `remora_seed` account on the master, limited to the
  replica's address, with read-only rights on the one database (SELECT, SHOW VIEW, TRIGGER,
  EVENT, LOCK TABLES) plus RELOAD and BINLOG MONITOR for the consistent snapshot with its GTID
  position. The replication account keeps REPLICATION SLAVE only, as asked.
- Account statements (CREATE USER, ALTER USER, GRANT) run with sql_log_bin=0: accounts are
  per server (the master's replication account has no business on the replica), and a local
  write in the replica's binary log would break gtid_strict_mode when replication resumes.
  CREATE DATABASE on the master is logged, so a replica seeded earlier gets it too.
- The replica also logs binary events (log_slave_updates), so that a promoted replica is a
  master others can follow, and it gets the application account with SELECT only (reads).
- Promote is PROVISION (zone admin, two-person approval in restricted zones): it decides which
  server holds the truth; a mistaken promote forks the data (split brain) and no rerun undoes it.
- server_id defaults to the service address read as a 32-bit number when it is IPv4: unique
  on a network without anyone keeping a list.
"""

import ipaddress
import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from hosts.models import DEFAULT_SETTINGS, Host, Placement, ServiceKind, address_validator

from ..ssh import quote as q
from .base import Category, Recipe, RecipeForm, secret_env
from .shell import APT_GET

RECIPES: list[Recipe] = []

CONFIG = "/etc/mysql/mariadb.conf.d/60-remora.cnf"
BACKUP_DIR = "/var/backups/remora-mariadb"
MASTER, REPLICA = ServiceKind.MYSQL_MASTER, ServiceKind.MYSQL_REPLICA

db_name = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
    "Use letters, digits and underscores only (at most 64, not starting with a digit): no "
    "quotes, spaces or dashes.",
)
db_user = RegexValidator(
    r"^[A-Za-z0-9_]{1,32}$", "Use letters, digits and underscores only (at most 32)."
)
password_chars = RegexValidator(
    r"^[A-Za-z0-9!#$%&()*+,./:;<=>?@\[\]^_{|}~-]{12,128}$",
    "Use 12 to 128 letters, digits and punctuation, without quotes, backslashes, backquotes "
    "or spaces.",
)
directory_path = RegexValidator(
    r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$",
    "Enter an absolute directory (letters, digits, . _ - and /), e.g. /var/backups/remora.",
)
backup_name = RegexValidator(
    r"^[A-Za-z0-9_]+-[0-9]{8}T[0-9]{6}Z\.sql\.gz$",
    "Enter a backup file name as the backup reported it, e.g. remora-20261126T010203Z.sql.gz "
    "(a name only: no slashes).",
)


# --- defaults from the inventory --------------------------------------------------------------


def _settings(host: Host | None, kind: str) -> dict:
    """The host's settings for a kind: its service's, else its latest placement's, else the
    kind's defaults."""
    base = dict(DEFAULT_SETTINGS.get(kind, {}))
    if host is None:
        return base
    service = host.services.filter(kind=kind).first()
    if service is not None:
        return service.effective_settings
    placement = Placement.objects.filter(host=host, kind=kind).order_by("-phase__number").first()
    return {**base, **(placement.settings if placement else {})}


def _hosts_with(kind: str, exclude: Host | None = None) -> list[Host]:
    hosts = Host.objects.filter(services__kind=kind) | Host.objects.filter(placements__kind=kind)
    if exclude is not None:
        hosts = hosts.exclude(pk=exclude.pk)
    return list(hosts.distinct().order_by("name"))


def _server_id(host: Host | None, fallback: int) -> int:
    if host is None:
        return fallback
    try:
        return int(ipaddress.IPv4Address(host.reach_address)) or fallback
    except ValueError:
        return fallback + host.pk


class _Form(RecipeForm):
    """Proposes inventory defaults (`propose`); a key missing from the submitted data takes its
    proposed value (the planner and the API submit only what they change). Secrets never do."""

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.propose()
        self.take_proposals()

    def propose(self) -> None:
        pass


def _address(**kw) -> forms.CharField:
    return forms.CharField(max_length=253, validators=[address_validator], **kw)


def _secret(help_text: str) -> forms.CharField:
    return forms.CharField(
        max_length=128,
        validators=[password_chars],
        widget=forms.PasswordInput(render_value=False),
        help_text=help_text,
    )


def _addresses(value: str, what: str) -> list[str]:
    items = [v for v in re.split(r"[\s,]+", value.strip()) if v]
    if not items:
        raise ValidationError(f"Name at least one {what}.")
    for item in items:
        if item != "localhost":
            try:
                address_validator(item)
            except ValidationError:
                raise ValidationError(f"{item!r} is not a host name or an IP address.") from None
    return list(dict.fromkeys(items))


class _ServerForm(_Form):
    database = forms.CharField(max_length=64, validators=[db_name])
    port = forms.IntegerField(min_value=1, max_value=65535, help_text="TCP port (1-65535).")
    server_id = forms.IntegerField(min_value=1, max_value=4294967295)
    bind_address = _address(help_text="The host's service address: where other hosts reach it.")
    app_user = forms.CharField(max_length=32, validators=[db_user], initial="remora")
    app_clients = forms.CharField(
        max_length=2000,
        help_text="Where the application connects from: host names or IPs separated by spaces "
        "or commas (the front ends' service addresses, and localhost).",
    )
    app_password = _secret("The application account's password.")
    kind = MASTER

    def propose(self) -> None:
        s = _settings(self.host, self.kind)
        self.fields["database"].initial = s.get("database", "remora")
        self.fields["port"].initial = s.get("port", 3306)
        self.fields["server_id"].initial = _server_id(self.host, 1 if self.kind == MASTER else 2)
        if self.host is not None:
            self.fields["bind_address"].initial = self.host.reach_address
        fronts = [h.reach_address for h in _hosts_with(ServiceKind.PHP_FRONTEND)]
        self.fields["app_clients"].initial = " ".join(["localhost", *fronts])

    def clean_app_clients(self) -> list[str]:
        return _addresses(self.cleaned_data["app_clients"], "application host")


class _Accounts(forms.Form):
    """The master's accounts for its replica: replication (REPLICATION SLAVE only) and seed
    (a read-only consistent snapshot of the database)."""

    repl_user = forms.CharField(max_length=32, validators=[db_user], initial="remora_repl")
    repl_password = _secret("The replication account's password.")
    seed_user = forms.CharField(max_length=32, validators=[db_user], initial="remora_seed")
    seed_password = _secret("The seed account's password.")


class MasterForm(_ServerForm, _Accounts):
    replica_address = _address(
        required=False,
        help_text="The replica's service address: the only place the replication and seed "
        "accounts may connect from. Empty: no replica yet, no such accounts.",
    )

    def propose(self) -> None:
        super().propose()
        replicas = _hosts_with(REPLICA, exclude=self.host)
        if replicas:
            self.fields["replica_address"].initial = replicas[0].reach_address

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("repl_password", "seed_password"):
            self.fields[name].required = False

    def clean(self):
        data = super().clean()
        if data.get("replica_address"):
            for name in ("repl_password", "seed_password"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, "Needed when a replica address is given.")
        return data


class ReplicaForm(_ServerForm, _Accounts):
    kind = REPLICA
    master_address = _address(help_text="The master's service address.")
    master_port = forms.IntegerField(min_value=1, max_value=65535)

    def propose(self) -> None:
        super().propose()
        s = _settings(self.host, REPLICA)
        master = Host.objects.filter(name=s.get("replicates_from") or "").first()
        if master is None:
            masters = _hosts_with(MASTER, exclude=self.host)
            master = masters[0] if masters else None
        if master is not None:
            self.fields["master_address"].initial = master.reach_address
            self.fields["master_port"].initial = _settings(master, MASTER).get("port", 3306)
        else:
            self.fields["master_port"].initial = 3306


class BackupForm(_Form):
    database = forms.CharField(max_length=64, validators=[db_name])
    directory = forms.CharField(max_length=200, validators=[directory_path], initial=BACKUP_DIR)
    keep = forms.IntegerField(min_value=1, max_value=365, initial=7, help_text="Backups kept.")

    def propose(self) -> None:
        kind = REPLICA if self.host and self.host.services.filter(kind=REPLICA) else MASTER
        self.fields["database"].initial = _settings(self.host, kind).get("database", "remora")

    def clean_directory(self) -> str:
        path = self.cleaned_data["directory"]
        if ".." in path.split("/") or "//" in path:
            raise ValidationError("The directory may not contain '..' or '//'.")
        return path.rstrip("/")


class RestoreForm(BackupForm):
    backup = forms.CharField(max_length=120, validators=[backup_name])
    keep = None

    def clean(self):
        data = super().clean()
        name, db = data.get("backup"), data.get("database")
        if name and db and not name.startswith(f"{db}-"):
            self.add_error("backup", f"This is not a backup of the database {db}.")
        return data


class NoParams(RecipeForm):
    pass


# --- bash ------------------------------------------------------------------------------------

# Shared functions; `sql` runs as root over the local socket with account statements kept out
# of the binary log (see the module's notes). Values reach it validated and quoted.
COMMON = "".join(  # the shared apt wrapper, then MariaDB's own functions
    (
        APT_GET,
        r"""
export DEBIAN_FRONTEND=noninteractive
sql() { mariadb --batch --skip-column-names "$@"; }
sql_nolog() { mariadb --batch --skip-column-names --init-command='SET SESSION sql_log_bin=0' "$@"; }
count() { sql -e "SELECT COUNT(*) FROM $1"; }
sql_string() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
ensure_package() {
  if installed "$1"; then echo "package $1: already in place"; return; fi
  echo "package $1: installing"
  apt_get update -qq
  apt_get install -y -qq -o Dpkg::Options::=--force-confold "$1" >/dev/null
  fresh_install=1; echo "package $1: installed"
}
config_changed=0 fresh_install=0
ensure_config() {  # path; the wanted content on stdin
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
    echo "config $1: already in place"; rm -f "$tmp"; return
  fi
  install -d -m 755 "$(dirname "$1")"
  install -m 644 "$tmp" "$1"; rm -f "$tmp"
  config_changed=1; echo "config $1: written"
}
ensure_running() {
  local was_active=0
  systemctl is-active --quiet mariadb && was_active=1
  if [ "$was_active" = 1 ] && [ "$config_changed" = 1 ] && [ "$fresh_install" = 0 ]; then
    systemctl restart mariadb; echo "mariadb: restarted (configuration changed)"
  elif [ "$was_active" = 1 ] && [ "$fresh_install" = 1 ]; then
    echo "mariadb: started by its installation, with the configuration in place"
  elif [ "$was_active" = 0 ]; then
    systemctl enable --now mariadb >/dev/null 2>&1 || {
      echo "mariadb does not start; its journal:" >&2
      journalctl -u mariadb -n 15 --no-pager >&2 || true; exit 1; }
    echo "mariadb: started"
  else
    echo "mariadb: already in place (running)"
  fi
  for _ in $(seq 1 30); do mariadb -e 'SELECT 1' >/dev/null 2>&1 && return; sleep 1; done
  echo "mariadb does not answer on its socket" >&2; exit 1
}
ensure_database() {
  if [ "$(count "information_schema.SCHEMATA WHERE SCHEMA_NAME='$1'")" = 1 ]; then
    echo "database $1: already in place"
  else
    sql -e "CREATE DATABASE $1 CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    echo "database $1: created"
  fi
}
ensure_probe_table() {  # the stack probe's table (the health endpoint writes and reads it)
  local where="information_schema.TABLES WHERE TABLE_SCHEMA='$1'"
  where+=" AND TABLE_NAME='remora_stack_probe'"
  if [ "$(count "$where")" = 1 ]; then
    echo "table $1.remora_stack_probe: already in place"
  else
    sql -e "CREATE TABLE $1.remora_stack_probe (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
      frontend VARCHAR(255) NOT NULL, token CHAR(16) NOT NULL,
      written_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB"
    echo "table $1.remora_stack_probe: created (the stack probe's; the application account" \
      "may not create tables)"
  fi
}
ensure_user() {  # user host password grant...
  local user=$1 host=$2 pw who before after; pw=$(sql_string "$3"); shift 3
  who="'$user'@'$host'"
  local where="User='$user' AND Host='$host'"
  if [ "$(count "mysql.user WHERE $where")" = 0 ]; then
    sql_nolog <<<"CREATE USER $who IDENTIFIED BY $pw;"; echo "user $who: created"
  elif [ "$(sql <<<"SELECT COUNT(*) FROM mysql.user WHERE $where
              AND authentication_string = PASSWORD($pw);")" = 0 ]; then
    sql_nolog <<<"ALTER USER $who IDENTIFIED BY $pw;"; echo "user $who: password updated"
  else
    echo "user $who: already in place"
  fi
  before=$(sql -e "SHOW GRANTS FOR $who")
  for grant in "$@"; do sql_nolog -e "GRANT $grant TO $who"; done
  after=$(sql -e "SHOW GRANTS FOR $who")
  if [ "$before" = "$after" ]; then echo "grants of $who: already in place"
  else echo "grants of $who: granted"; fi
}
""",
    )
)

STATUS_COMMON = r"""
missing=()
wanted_config() {  # path; the wanted content on stdin
  if ! cmp -s - "$1" 2>/dev/null; then missing+=("configuration $1 is missing or differs"); fi
}
count() { mariadb --batch --skip-column-names -e "SELECT COUNT(*) FROM $1"; }
user_exists() {
  [ "$(count "mysql.user WHERE User='$1' AND Host='$2'")" = 1 ] \
    || missing+=("account '$1'@'$2' does not exist")
}
db_exists() {
  [ "$(count "information_schema.SCHEMATA WHERE SCHEMA_NAME='$1'")" = 1 ] \
    || missing+=("database $1 does not exist")
}
report() {
  if [ "${#missing[@]}" -gt 0 ]; then printf 'missing: %s\n' "${missing[@]}"; exit 3; fi
  echo "in place: $1"
}
"""

APP_GRANTS = "SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE"
SEED_DB_GRANTS = "SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES"


def _env(name: str, what: str) -> str:
    return f'"${{{secret_env(name)}:?{what} is missing}}"'


def _config(p: dict, replica: bool) -> str:
    role = "replica" if replica else "master"
    extra = "relay_log = relay-bin\nread_only = 1\n" if replica else ""
    return (
        f"# Written by Remora Admin (mariadb_{role}); a rerun puts it back.\n[mysqld]\n"
        f"server_id = {int(p['server_id'])}\nbind_address = {p['bind_address']}\n"
        f"port = {int(p['port'])}\nlog_bin = mariadb-bin\nbinlog_format = ROW\n"
        "gtid_strict_mode = 1\nlog_slave_updates = 1\nbinlog_expire_logs_seconds = 604800\n" + extra
    )


def _write_config(p: dict, replica: bool) -> str:
    return f"ensure_config {q(CONFIG)} <<'CNF'\n{_config(p, replica)}CNF\n"


def _app_users(p: dict, grants: str) -> str:
    db = p["database"]
    return "".join(
        f"ensure_user {q(p['app_user'])} {q(client)} {_env('app_password', 'the app password')}"
        f" {q(f'{grants} ON {db}.*')}\n"
        for client in p["app_clients"]
    )


def _master(p: dict) -> str:
    db = p["database"]
    script = COMMON + _write_config(p, False) + "ensure_package mariadb-server\nensure_running\n"
    script += f"ensure_database {q(db)}\nensure_probe_table {q(db)}\n" + _app_users(p, APP_GRANTS)
    if p.get("replica_address"):
        replica = q(p["replica_address"])
        script += (
            f"ensure_user {q(p['repl_user'])} {replica} "
            f"{_env('repl_password', 'the replication password')} "
            f"{q('REPLICATION SLAVE ON *.*')}\n"
            f"ensure_user {q(p['seed_user'])} {replica} "
            f"{_env('seed_password', 'the seed password')} "
            f"{q('RELOAD, BINLOG MONITOR ON *.*')} {q(f'{SEED_DB_GRANTS} ON {db}.*')}\n"
        )
    return script + 'echo "master: done"\n'


def _master_status(p: dict) -> str:
    script = STATUS_COMMON + f"wanted_config {q(CONFIG)} <<'CNF'\n{_config(p, False)}CNF\n"
    script += "if ! systemctl is-active --quiet mariadb; then missing+=('mariadb is not running')\n"
    script += f"else\n  db_exists {q(p['database'])}\n"
    for client in p["app_clients"]:
        script += f"  user_exists {q(p['app_user'])} {q(client)}\n"
    if p.get("replica_address"):
        for user in (p["repl_user"], p["seed_user"]):
            script += f"  user_exists {q(user)} {q(p['replica_address'])}\n"
    return script + "fi\nreport 'mariadb master'\n"


RECIPES.append(
    Recipe(
        name="mariadb_master",
        title="MariaDB master",
        description="Install MariaDB, bind it to the service address with binary log and GTID, "
        "create the Remora database, the application account (least privilege on that "
        "database) and the replica's replication and seed accounts (its address only).",
        category=Category.PROVISION,
        form=MasterForm,
        script=_master,
        timeout=600,
        changes_host=True,
        service_kinds=(MASTER,),
        secret_fields=("app_password", "repl_password", "seed_password"),
        as_root=True,
        status=_master_status,
    )
)


def _backup(p: dict) -> str:
    db, directory, keep = q(p["database"]), q(p["directory"]), int(p["keep"])
    return f"""
umask 077
install -d -m 700 {directory}
name={db}-$(date -u +%Y%m%dT%H%M%SZ).sql.gz
path={directory}/$name
[ ! -e "$path" ] || {{ echo "$path exists already; try again in a second" >&2; exit 1; }}
tmp=$(mktemp {directory}/.partial.XXXXXX)
trap 'rm -f "$tmp"' EXIT
mariadb-dump --single-transaction --routines --events --triggers --databases {db} \\
  | gzip -9 >"$tmp"
mv "$tmp" "$path"
echo "backup: $name"
echo "size: $(stat -c %s "$path") bytes"
echo "sha256: $(sha256sum "$path" | cut -d' ' -f1)"
pattern={q(p["database"] + "-*.sql.gz")}
find {directory} -maxdepth 1 -type f -name "$pattern" -printf '%f\\n' \\
  | sort -r | tail -n +{keep + 1} | while read -r old; do
    rm -f -- {directory}/"$old"; echo "rotated out: $old"
  done
echo "kept: $(find {directory} -maxdepth 1 -type f -name "$pattern" | wc -l) (at most {keep})"
"""


RECIPES.append(
    Recipe(
        name="mariadb_backup",
        title="MariaDB backup",
        description="A consistent dump (mariadb-dump --single-transaction, routines, events), "
        "gzip-compressed into the backup directory, keeping the newest N; reports the file "
        "name, its size and its sha256.",
        category=Category.MAINTENANCE,
        form=BackupForm,
        script=_backup,
        timeout=1800,
        changes_host=True,
        service_kinds=(MASTER, REPLICA),
        as_root=True,
    )
)


def _restore(p: dict) -> str:
    path = q(f"{p['directory']}/{p['backup']}")
    return f"""
path={path} db={q(p["database"])}
[ -f "$path" ] || {{ echo "no backup $path" >&2; exit 1; }}
gzip -t "$path"
echo "restoring $path (sha256 $(sha256sum "$path" | cut -d' ' -f1))"
gunzip -c "$path" | mariadb --batch
echo "restored: database $db from $path"
"""


RECIPES.append(
    Recipe(
        name="mariadb_restore",
        title="MariaDB restore",
        description="Restore the database from one of the backups in the backup directory "
        "(its tables are replaced by the backup's).",
        category=Category.PROVISION,
        form=RestoreForm,
        script=_restore,
        timeout=3600,
        changes_host=True,
        service_kinds=(MASTER,),
        as_root=True,
    )
)
