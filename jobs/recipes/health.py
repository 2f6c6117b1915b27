"""Health checks, one per service kind, read-only: what the dashboard's colours come from.

`service_health` asks the host about one of its services the way a person would, reading the
service's own configuration on the host (the port Apache listens on, Perlbal's pools, the
floating address in keepalived's configuration), so one schedule can check every host of a
kind. It exits 0 when healthy, 3 when not (saying what is wrong); anything else means the
check itself could not run. The worker turns the result into the service's state
(jobs/health.py), alerting only after several failures in a row.
"""

from django import forms

from hosts.models import ServiceKind

from .base import Category, Recipe, RecipeForm

K = ServiceKind
RECIPES: list[Recipe] = []


class HealthForm(RecipeForm):
    service = forms.ChoiceField(choices=K.choices)
    lag_limit = forms.IntegerField(
        min_value=1,
        max_value=86400,
        initial=60,
        help_text="The shadow database is unhealthy when it lags the master by more seconds.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.host is not None:
            kinds = sorted({s.kind for s in self.host.services.all()})
            if kinds:
                self.fields["service"].choices = [(k, K(k).label) for k in kinds]
        self.take_proposals()


CHECKS = {
    K.MYSQL_MASTER: r"""
if ! ro=$(mariadb -N -e 'SELECT @@read_only' 2>&1); then
  bad "MariaDB does not answer: $ro"
fi
[ "$ro" = 0 ] || bad "MariaDB answers but is read-only: it takes no writes"
good "MariaDB answers and takes writes"
""",
    K.MYSQL_REPLICA: r"""
if ! status=$(mariadb -e 'SHOW REPLICA STATUS\G' 2>&1); then
  bad "MariaDB does not answer: $status"
fi
[ -n "$status" ] || bad "MariaDB answers but does not replicate (no replica configured)"
field() { printf '%s\n' "$status" | awk -F': ' -v k="$1" '$1 ~ "^ *"k"$" {print $2}'; }
io=$(field Slave_IO_Running); sql=$(field Slave_SQL_Running); lag=$(field Seconds_Behind_Master)
[ "$io" = Yes ] || bad "replication does not receive from the master ($io): $(field Last_IO_Error)"
[ "$sql" = Yes ] || bad "replication does not apply ($sql): $(field Last_SQL_Error)"
if [ "$lag" = NULL ] || [ "$lag" -gt "$lag_limit" ]; then
  bad "the shadow database lags the master by ${lag} s (limit ${lag_limit} s)"
fi
good "replicating from the master, lag ${lag} s"
""",
    K.NFS_SERVER: r"""
systemctl is-active --quiet nfs-ganesha || bad "nfs-ganesha is not running"
ss -Hltn 'sport = :2049' | grep -q . || bad "nothing listens on port 2049"
exports=$(grep -c '^EXPORT {' /etc/ganesha/ganesha.conf 2>/dev/null || true)
[ "${exports:-0}" -ge 1 ] || bad "nfs-ganesha exports nothing"
good "nfs-ganesha serves ${exports} export(s) on port 2049"
""",
    K.PHP_FRONTEND: r"""
port=$(awk '$1 == "Listen" {print $2; exit}' /etc/apache2/ports.conf 2>/dev/null)
[ -n "$port" ] || bad "Apache has no Listen port (is the front end installed?)"
answer=$(mktemp)
code=$(curl -s -o "$answer" -w '%{http_code}' --max-time 10 "http://localhost:$port/" || true)
body=$(head -c 300 "$answer"); rm -f "$answer"
[ "$code" = 200 ] || bad "the site answers HTTP ${code:-nothing} on port $port: $body"
good "the site answers HTTP 200 on port $port"
""",
    K.PERLBAL: r"""
systemctl is-active --quiet perlbal || bad "Perlbal is not running"
conf=/etc/perlbal/perlbal.conf
[ -f "$conf" ] || bad "Perlbal has no configuration ($conf)"
listen=$(awk '/SET listen/ && !/127.0.0.1/ {print $4; exit}' "$conf")
port=${listen##*:}
ss -Hltn "sport = :${port:-80}" | grep -q . || bad "Perlbal does not listen on port ${port:-80}"
down=(); members=0
while read -r node; do
  members=$((members + 1))
  curl -s -o /dev/null --max-time 5 "http://$node/" || down+=("$node")
done < <(awk '$1 == "POOL" && $3 == "ADD" {print $4}' "$conf")
[ "$members" -gt 0 ] || bad "Perlbal's pool has no member"
[ "${#down[@]}" = 0 ] || bad "pool member(s) down: ${down[*]} (of $members)"
good "Perlbal listens on port ${port:-80}; all $members pool member(s) answer"
""",
    K.HEARTBEAT: r"""
systemctl is-active --quiet keepalived || bad "keepalived is not running"
[ -f /etc/keepalived/keepalived.conf ] || bad "keepalived has no configuration"
vip=$(awk '/virtual_ipaddress/ {getline; print $1; exit}' /etc/keepalived/keepalived.conf)
[ -n "$vip" ] || bad "keepalived holds no floating address in its configuration"
if ip -4 -o addr show | grep -q " ${vip} "; then
  good "keepalived runs; this host holds the floating address $vip"
fi
good "keepalived runs; the peer holds the floating address $vip"
""",
}


def _script(p: dict) -> str:
    kind = p["service"]
    return (
        "# shellcheck disable=SC2034  # lag_limit is for the shadow database's check\n"
        f"lag_limit={int(p.get('lag_limit') or 60)}\n"
        'bad() { echo "unhealthy: $*"; exit 3; }\n'
        'good() { echo "healthy: $*"; exit 0; }\n' + CHECKS[kind]
    )


RECIPES.append(
    Recipe(
        name="service_health",
        title="Check a service's health",
        description="Read-only: asks the host whether one of its services works (MariaDB "
        "answers and takes writes; the shadow replicates within its lag limit; NFS exports are "
        "served; the site answers; Perlbal's pool members answer; keepalived runs, and who "
        "holds the floating address). Exit 0 healthy, 3 unhealthy.",
        category=Category.CHECK,
        form=HealthForm,
        script=_script,
        timeout=60,
        as_root=True,
    )
)
