"""The shadow database: a MariaDB replica of the master (the application's reads; writes go to
the master), seeded from a consistent snapshot and kept by GTID replication; promote makes it
the master. The decisions behind it are in mariadb.py's docstring."""

from ..ssh import quote as q
from .base import Category, Recipe
from .mariadb import (
    COMMON,
    CONFIG,
    REPLICA,
    STATUS_COMMON,
    NoParams,
    ReplicaForm,
    _app_users,
    _config,
    _env,
    _write_config,
)

RECIPES: list[Recipe] = []

SLAVE_FIELD = r"""
slave_field() { mariadb -e 'SHOW SLAVE STATUS\G' | sed -n "s/^ *$1: //p"; }
"""


# Seed from the master (once), then replicate; SEED_PW and REPL_PW become the secrets' env
# references. The dump runs with sql_log_bin=0: the replica's own binary log stays clean.
REPLICATE = r"""
current=$(slave_field Master_Host)
if [ -n "$current" ] && [ "$current" != "$master" ]; then
  echo "this replica follows $current, not $master; promote or reset it first" >&2
  exit 4
fi
if [ -z "$current" ]; then
  if ! ids=$(MYSQL_PWD=SEED_PW mariadb --host="$master" --port="$mport" --user="$seed_user" \
        --connect-timeout=10 -N -e 'SELECT @@server_id' 2>&1); then
    echo "prerequisite missing: the master $master:$mport does not let $seed_user in from" \
         "here ($ids). Run mariadb_master with this replica's address first." >&2
    exit 5
  fi
  if [ "$ids" = "$(sql -e 'SELECT @@server_id')" ]; then
    echo "the master and this replica share server_id $ids; give this one its own" >&2; exit 5
  fi
  echo "seeding $db from $master:$mport (consistent snapshot with its GTID position)"
  { echo 'SET SESSION sql_log_bin=0;'
    MYSQL_PWD=SEED_PW mariadb-dump --host="$master" --port="$mport" --user="$seed_user" \
      --single-transaction --master-data=1 --gtid --routines --events --triggers --databases "$db"
  } | sql
  repl_pw=$(sql_string REPL_PW)
  sql_nolog <<<"CHANGE MASTER TO MASTER_HOST='$master', MASTER_PORT=$mport,
 MASTER_USER='$repl_user', MASTER_PASSWORD=$repl_pw,
 MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=10;"
  echo "replication from $master: configured at GTID $(sql -e 'SELECT @@gtid_slave_pos')"
fi
if [ "$(slave_field Slave_IO_Running)" = Yes ] && [ "$(slave_field Slave_SQL_Running)" = Yes ]; then
  echo "replication: already in place"
else
  sql_nolog -e 'START SLAVE'
  echo "replication: started"
fi
io='' sqlt=''
for _ in $(seq 1 30); do
  io=$(slave_field Slave_IO_Running); sqlt=$(slave_field Slave_SQL_Running)
  [ "$io" = Yes ] && [ "$sqlt" = Yes ] && break
  sleep 1
done
if [ "$io" != Yes ] || [ "$sqlt" != Yes ]; then
  echo "replication does not run: IO $io, SQL $sqlt" >&2
  mariadb -e 'SHOW SLAVE STATUS\G' | grep -E 'Last_(IO|SQL)_Error:' >&2
  exit 1
fi
echo "lag: $(slave_field Seconds_Behind_Master) s behind the master"
"""


def _replica(p: dict) -> str:
    head = (
        f"db={q(p['database'])} master={q(p['master_address'])} mport={int(p['master_port'])}\n"
        f"repl_user={q(p['repl_user'])} seed_user={q(p['seed_user'])}\n"
    )
    seed_pw = _env("seed_password", "the seed password")
    repl_pw = _env("repl_password", "the replication password")
    return (
        COMMON
        + SLAVE_FIELD
        + head
        + r"""
if installed mariadb-server && systemctl is-active --quiet mariadb \
   && [ -z "$(slave_field Master_Host)" ] \
   && [ -n "$(sql -e "SHOW TABLES FROM $db" 2>/dev/null)" ]; then
  echo "this server holds the database $db but replicates from nowhere (a promoted replica?);" \
       "refusing to seed over it. Drop the database by hand to seed again." >&2
  exit 4
fi
"""
        + _write_config(p, True)
        + "ensure_package mariadb-server\nensure_running\n"
        + REPLICATE.replace("SEED_PW", seed_pw).replace("REPL_PW", repl_pw)
        + _app_users(p, "SELECT")
        + 'echo "replica: done"\n'
    )


def _replica_status(p: dict) -> str:
    return (
        STATUS_COMMON
        + SLAVE_FIELD
        + f"wanted_config {q(CONFIG)} <<'CNF'\n{_config(p, True)}CNF\n"
        + f"master={q(p['master_address'])}\n"
        + f"""
if ! systemctl is-active --quiet mariadb; then missing+=('mariadb is not running')
else
  io=$(slave_field Slave_IO_Running); sqlt=$(slave_field Slave_SQL_Running)
  host=$(slave_field Master_Host)
  [ "$host" = "$master" ] || missing+=("replication from $master (follows: ${{host:-nothing}})")
  [ "$io" = Yes ] || missing+=("replication IO thread (Slave_IO_Running: ${{io:-none}})")
  [ "$sqlt" = Yes ] || missing+=("replication SQL thread (Slave_SQL_Running: ${{sqlt:-none}})")
  echo "lag: $(slave_field Seconds_Behind_Master) s (Seconds_Behind_Master)"
  [ "$(mariadb -N -e 'SELECT @@read_only')" = 1 ] || missing+=('read_only is off')
  db_exists {q(p["database"])}
fi
report 'mariadb replica (shadow database)'
"""
    )


RECIPES.append(
    Recipe(
        name="mariadb_replica",
        title="MariaDB shadow replica",
        description="The shadow database: a read-only replica that serves the application's "
        "reads (writes go to the master). Installs MariaDB, seeds it from a consistent snapshot "
        "of the master and starts GTID replication.",
        category=Category.PROVISION,
        form=ReplicaForm,
        script=_replica,
        timeout=900,
        changes_host=True,
        service_kinds=(REPLICA,),
        secret_fields=("app_password", "repl_password", "seed_password"),
        as_root=True,
        status=_replica_status,
    )
)


def _promote(p: dict) -> str:
    return (
        COMMON
        + SLAVE_FIELD
        + f"""
if [ -z "$(slave_field Master_Host)" ] && [ "$(sql -e 'SELECT @@read_only')" = 0 ]; then
  echo "promotion: already in place (no replication, writable)"
  exit 0
fi
if [ -n "$(slave_field Master_Host)" ]; then
  sql_nolog -e 'STOP SLAVE IO_THREAD'
  for _ in $(seq 1 60); do  # apply what is already relayed before cutting loose
    slave_field Slave_SQL_Running_State | grep -q 'read all relay log' && break
    [ "$(slave_field Slave_SQL_Running)" = Yes ] || break
    sleep 1
  done
  echo "applied up to GTID $(sql -e 'SELECT @@gtid_slave_pos')"
  sql_nolog -e 'STOP SLAVE'
  sql_nolog -e 'RESET SLAVE ALL'
  echo "replication: stopped and forgotten"
fi
sql_nolog -e 'SET GLOBAL read_only = 0'
if [ -f {q(CONFIG)} ]; then sed -i 's/^read_only = 1$/read_only = 0/' {q(CONFIG)}; fi
echo "read_only: off (in {CONFIG} too, so a restart keeps it writable)"
"""
    )


def _promote_status(p: dict) -> str:
    return (
        SLAVE_FIELD
        + """
missing=()
systemctl is-active --quiet mariadb || { echo 'missing: mariadb is not running'; exit 3; }
following=$(slave_field Master_Host)
[ -z "$following" ] || missing+=("still replicating from $following")
[ "$(mariadb -N -e 'SELECT @@read_only')" = 0 ] || missing+=('read_only is on')
if [ "${#missing[@]}" -gt 0 ]; then printf 'missing: %s\\n' "${missing[@]}"; exit 3; fi
echo 'in place: promoted (no replication, writable)'
"""
    )


RECIPES.append(
    Recipe(
        name="mariadb_promote",
        title="Promote the replica to master",
        description="Stop replication after applying what was relayed, forget the master and "
        "make the server writable. Provisioning: it decides which server holds the truth, and "
        "a mistaken promote forks the data.",
        category=Category.PROVISION,
        form=NoParams,
        script=_promote,
        timeout=300,
        changes_host=True,
        service_kinds=(REPLICA,),
        as_root=True,
        status=_promote_status,
    )
)
