"""Perlbal: the reverse-proxy pool of front ends; add, drain and remove a front end.

Perlbal 1.80 from Debian, run by a native systemd unit (as www-data, allowed to bind port 80;
restarted on failure) instead of the package's init script, which runs it as www-data unable
to bind a port below 1024 and reports "active" whether it runs or not. The package's
`PERLBAL_ENABLE=true` is set as well, so the init script agrees. Backend connections are not
kept alive (`persist_backend = off`, Perlbal's default): a front end removed from the pool then
stops receiving requests as soon as its in-flight ones finish, which is what a drain waits for.
The pool is changed live through Perlbal's management interface on a loopback port and in
the configuration file at once, so a restart keeps the change.
"""

import ipaddress
import re

from django import forms
from django.core.exceptions import ValidationError

from hosts.models import Host, ServiceKind

from ..ssh import quote as q
from .base import Category, Recipe, RecipeForm
from .shell import APT_GET, ENSURE

CONFIG = "/etc/perlbal/perlbal.conf"
UNIT = "/etc/systemd/system/perlbal.service"
DEFAULTS_FILE = "/etc/default/perlbal"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
ENTRY_RE = re.compile(r"^(?P<host>[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})$")

RECIPES: list[Recipe] = []


def perlbal_settings(host) -> dict:
    if host is None:
        return {}
    service = host.services.filter(kind=ServiceKind.PERLBAL).first()
    return service.effective_settings if service else {}


def backend_address(entry: str) -> str:
    """One front end as IP:port: an IP address with its port, or an inventory host name with
    its port (its service address is used). Raises ValidationError in words."""
    entry = entry.strip()
    match = ENTRY_RE.match(entry)
    if not match:
        raise ValidationError(
            f"“{entry}” is not a front end: write IP:port or an inventory host name with its "
            "port, without spaces (e.g. 10.0.0.3:8080 or sunjammer:8080)."
        )
    name, port = match["host"], int(match["port"])
    if not 1 <= port <= 65535:
        raise ValidationError(f"“{entry}”: the port must be between 1 and 65535.")
    try:
        address = str(ipaddress.IPv4Address(name))
    except ValueError:
        host = Host.objects.filter(name=name).first()
        if host is None:
            raise ValidationError(
                f"“{name}” is neither an IPv4 address nor a host of the inventory."
            ) from None
        try:
            address = str(ipaddress.IPv4Address(host.reach_address))
        except ValueError:
            raise ValidationError(
                f"{name}'s service address ({host.reach_address}) is not an IPv4 address; "
                "Perlbal's pool needs one: set the host's service address."
            ) from None
    return f"{address}:{port}"


def _port_field(initial: int, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(
        min_value=1,
        max_value=65535,
        initial=initial,
        help_text=help_text,
        error_messages={
            "min_value": "A port is between 1 and 65535.",
            "max_value": "A port is between 1 and 65535.",
        },
    )


class PoolForm(RecipeForm):
    """What every Perlbal recipe needs: the pool's name and the management port."""

    pool = forms.CharField(max_length=32, initial="remora", help_text="Perlbal's pool name.")
    manage_port = _port_field(60000, "Perlbal's management interface, on 127.0.0.1 only.")

    def clean_pool(self) -> str:
        value = self.cleaned_data["pool"].strip()
        if not NAME_RE.match(value):
            raise ValidationError("A pool name is a letter then letters, digits or underscores.")
        return value


class PerlbalForm(PoolForm):
    port = _port_field(80, "The public port the reverse proxy listens on (all addresses).")
    backends = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="The front ends, one per line or comma-separated: IP:port or an inventory "
        "host name with its port (its service address is used).",
    )
    field_order = ["port", "backends", "pool", "manage_port"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = perlbal_settings(self.host)
        if settings.get("port"):
            self.fields["port"].initial = settings["port"]
        if settings.get("backends"):
            self.fields["backends"].initial = "\n".join(settings["backends"])

    def clean_backends(self) -> list[str]:
        entries = [e for e in re.split(r"[,\n]", self.cleaned_data["backends"]) if e.strip()]
        if not entries:
            raise ValidationError("Name at least one front end.")
        errors, nodes = [], []
        for entry in entries:
            try:
                node = backend_address(entry)
            except ValidationError as error:
                errors.extend(error.messages)
                continue
            if node not in nodes:
                nodes.append(node)
        if errors:
            raise ValidationError(errors)
        return nodes


class BackendForm(PoolForm):
    backend = forms.CharField(
        max_length=260,
        help_text="One front end: IP:port or an inventory host name with its port.",
    )
    field_order = ["backend", "pool", "manage_port"]

    def clean_backend(self) -> str:
        return backend_address(self.cleaned_data["backend"])


class DrainForm(BackendForm):
    wait = forms.IntegerField(
        min_value=1,
        max_value=3600,
        initial=120,
        help_text="Seconds to wait for the front end's connections to finish.",
    )


def _config(p: dict) -> list[str]:
    pool = p["pool"]
    lines = [
        "# Written by Remora Admin (the perlbal recipe); changes here are overwritten.",
        f"CREATE POOL {pool}",
        *[f"  POOL {pool} ADD {node}" for node in p["backends"]],
        "",
        f"CREATE SERVICE {pool}_balancer",
        f"  SET listen          = 0.0.0.0:{int(p['port'])}",
        "  SET role            = reverse_proxy",
        f"  SET pool            = {pool}",
        "  SET persist_client  = on",
        "  SET persist_backend = off",
        "  SET verify_backend  = off",
        f"ENABLE {pool}_balancer",
        "",
        "CREATE SERVICE mgmt",
        "  SET role   = management",
        f"  SET listen = 127.0.0.1:{int(p['manage_port'])}",
        "ENABLE mgmt",
    ]
    return lines


UNIT_LINES = [
    "# Written by Remora Admin (the perlbal recipe).",
    "[Unit]",
    "Description=Perlbal reverse proxy (Remora front-end pool)",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "User=www-data",
    "Group=www-data",
    "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    f"ExecStart=/usr/bin/perlbal --config={CONFIG}",
    "Restart=on-failure",
    "RestartSec=1",
    "LimitNOFILE=65536",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
]


def _lines(lines: list[str]) -> str:
    return " ".join(q(line) for line in lines)


def _manage(port: int) -> str:
    """A bash function `manage CMD`: one command to Perlbal's management port, its answer on
    stdout (without the closing "."), exit 1 on an ERROR answer or no answer."""
    return f"""
manage() {{
  local line status=1
  exec 3<>/dev/tcp/127.0.0.1/{int(port)} || return 1
  printf '%s\\r\\n' "$1" >&3
  while IFS= read -r -t 5 line <&3; do
    line=${{line%$'\\r'}}
    case "$line" in
      .) status=0; break ;;
      OK) status=0; break ;;
      ERROR*) echo "$line" >&2; status=1; break ;;
      *) printf '%s\\n' "$line" ;;
    esac
  done
  exec 3>&-
  return "$status"
}}
"""


def _install(p: dict) -> str:
    port = int(p["port"])
    return (
        APT_GET
        + ENSURE
        + f"""
changed=0
ensure_installed perlbal curl
new=$(mktemp)
trap 'rm -f "$new"' EXIT
printf '%s\\n' {_lines(_config(p))} >"$new"
config_changed=0
# The pool's members in any order are the same pool (perlbal_add_backend appends one).
canonical() {{ grep -v '^  POOL .* ADD ' "$1"; grep '^  POOL .* ADD ' "$1" | sort; }}
if ! [ -f {q(CONFIG)} ] || ! cmp -s <(canonical "$new") <(canonical {q(CONFIG)}); then
  install -m 0644 "$new" {q(CONFIG)}
  echo "Wrote {CONFIG}: pool {p["pool"]} = {" ".join(p["backends"])}"
  config_changed=1
  changed=1
fi
printf '%s\\n' {_lines(UNIT_LINES)} >"$new"
if ! cmp -s "$new" {q(UNIT)}; then
  install -m 0644 "$new" {q(UNIT)}
  systemctl daemon-reload
  echo "Wrote {UNIT}"
  config_changed=1
  changed=1
fi
if ! grep -qx 'PERLBAL_ENABLE=true' {q(DEFAULTS_FILE)}; then
  sed -i 's/^PERLBAL_ENABLE=.*/PERLBAL_ENABLE=true/' {q(DEFAULTS_FILE)}
  grep -qx 'PERLBAL_ENABLE=true' {q(DEFAULTS_FILE)} \\
    || echo 'PERLBAL_ENABLE=true' >>{q(DEFAULTS_FILE)}
  echo "Set PERLBAL_ENABLE=true in {DEFAULTS_FILE}"
  changed=1
fi
ensure_running perlbal restart Perlbal
for _ in $(seq 1 50); do
  if ss -Hltn "sport = :{port}" | grep -q .; then break; fi
  sleep 0.2
done
if ! ss -Hltn "sport = :{port}" | grep -q .; then
  echo "Perlbal does not listen on port {port}:" >&2
  journalctl -u perlbal --no-pager -n 20 >&2 || true
  exit 1
fi
if [ "$changed" = 0 ]; then
  echo "Perlbal on port {port} with pool {p["pool"]}: already in place"
else
  echo "Perlbal listens on port {port}; pool {p["pool"]}: {" ".join(p["backends"])}"
fi
"""
    )


def _needs_perlbal(p: dict) -> str:
    return f"""
if ! systemctl is-active --quiet perlbal || [ ! -f {q(CONFIG)} ]; then
  echo "Perlbal is not running here: run the Perlbal recipe (perlbal) first." >&2
  exit 3
fi
{_manage(p["manage_port"])}
"""


def _status(p: dict) -> str:
    port = int(p["port"])
    wanted = " ".join(sorted(p["backends"]))
    return f"""
{_manage(p["manage_port"])}
missing=()
dpkg-query -W -f='${{Status}}' perlbal 2>/dev/null | grep -q 'ok installed' \\
  || missing+=("the perlbal package is not installed")
systemctl is-active --quiet perlbal || missing+=("the perlbal service is not active")
ss -Hltn "sport = :{port}" | grep -q . || missing+=("nothing listens on port {port}")
if pool=$(manage {q("show pool " + p["pool"])} 2>/dev/null); then
  nodes=$(printf '%s\\n' "$pool" | awk 'NF {{print $1}}' | sort | xargs)
  if [ "$nodes" != {q(wanted)} ]; then
    missing+=("pool {p["pool"]} has [$nodes], not [{wanted}]")
  fi
else
  missing+=("the management port {int(p["manage_port"])} does not show pool {p["pool"]}")
fi
if [ "${{#missing[@]}}" -gt 0 ]; then
  printf 'missing: %s\\n' "${{missing[@]}}"
  exit 3
fi
echo "Perlbal active on port {port}; pool {p["pool"]}: {wanted}"
"""


def _add(p: dict) -> str:
    pool, node = p["pool"], p["backend"]
    line = f"  POOL {pool} ADD {node}"
    return f"""
{_needs_perlbal(p)}
changed=0
if ! grep -qxF {q(line)} {q(CONFIG)}; then
  # After the pool's last member (or its CREATE line): the pool keeps the order it grew in.
  after=$(grep -nE {q(f"^(CREATE POOL {pool}|  POOL {pool} ADD .*)$")} {q(CONFIG)} \\
    | tail -n 1 | cut -d: -f1)
  [ -n "$after" ] || {{ echo "no pool {pool} in {CONFIG}" >&2; exit 1; }}
  sed -i "${{after}}a\\{line}" {q(CONFIG)}
  grep -qxF {q(line)} {q(CONFIG)} || {{ echo "no pool {pool} in {CONFIG}" >&2; exit 1; }}
  echo "Added {node} to pool {pool} in {CONFIG}"
  changed=1
fi
if ! manage {q("show pool " + pool)} | awk '{{print $1}}' | grep -qxF {q(node)}; then
  manage {q(f"pool {pool} add {node}")}
  echo "Added {node} to the running pool {pool}"
  changed=1
fi
if [ "$changed" = 0 ]; then
  echo "{node} is in pool {pool}: already in place"
fi
manage {q("show pool " + pool)}
"""


def _drain(p: dict) -> str:
    pool, node = p["pool"], p["backend"]
    line = f"  POOL {pool} ADD {node}"
    return f"""
{_needs_perlbal(p)}
changed=0
if grep -qxF {q(line)} {q(CONFIG)}; then
  sed -i {q(f"/^  POOL {pool} ADD {re.escape(node)}$/d")} {q(CONFIG)}
  echo "Removed {node} from pool {pool} in {CONFIG}"
  changed=1
fi
if manage {q("show pool " + pool)} | awk '{{print $1}}' | grep -qxF {q(node)}; then
  manage {q(f"pool {pool} remove {node}")}
  echo "Removed {node} from the running pool {pool}: no new requests go there"
  changed=1
fi
start=$SECONDS
while :; do
  open=$(manage backends | awk -v n={q(node)} '$1 == n {{print $2}}')
  [ -z "$open" ] && break
  if [ $((SECONDS - start)) -ge {int(p["wait"])} ]; then
    echo "{node} still has $open connection(s) after {int(p["wait"])} s" >&2
    exit 1
  fi
  echo "waiting for $open connection(s) to {node} to finish"
  sleep 1
done
if [ "$changed" = 0 ]; then
  echo "{node} is not in pool {pool}: already in place"
else
  echo "Drained {node} in $((SECONDS - start)) s; no connection to it remains"
fi
manage {q("show pool " + pool)}
"""


def _pool_status(p: dict) -> str:
    return f"""
{_needs_perlbal(p)}
pool=$(manage {q("show pool " + p["pool"])})
connections=$(manage backends)
down=0
count=0
echo "pool {p["pool"]}:"
while read -r node used; do
  [ -n "$node" ] || continue
  count=$((count + 1))
  open=$(printf '%s\\n' "$connections" | awk -v n="$node" '$1 == n {{print $2}}')
  code=$(curl -s -o /dev/null -m 3 -w '%{{http_code}}' "http://$node/" || true)
  if [ "$code" = 000 ] || [ -z "$code" ]; then
    state="DOWN (no answer)"
    down=$((down + 1))
  else
    state="up (HTTP $code)"
  fi
  echo "  $node  $state  requests=$used  open=${{open:-0}}"
done <<<"$pool"
echo "$count node(s), $down down"
if [ "$count" = 0 ]; then
  echo "the pool is empty: nothing serves requests" >&2
  exit 1
fi
[ "$down" = 0 ]
"""


PERLBAL = (ServiceKind.PERLBAL,)

RECIPES.append(
    Recipe(
        name="perlbal",
        title="Perlbal load balancer",
        description="Install Perlbal 1.80 from Debian as a reverse proxy on a public port over "
        "a pool of PHP front ends (their service addresses), with a management interface on "
        "127.0.0.1 only; a systemd unit runs it as www-data and restarts it on failure.",
        category=Category.PROVISION,
        form=PerlbalForm,
        script=_install,
        timeout=600,
        changes_host=True,
        as_root=True,
        status=_status,
    )
)
RECIPES.append(
    Recipe(
        name="perlbal_add_backend",
        title="Add a front end to the Perlbal pool",
        description="Add one front end to the running pool and to its configuration.",
        category=Category.OPERATE,
        form=BackendForm,
        script=_add,
        timeout=60,
        changes_host=True,
        service_kinds=PERLBAL,
        as_root=True,
    )
)
RECIPES.append(
    Recipe(
        name="perlbal_drain_backend",
        title="Drain a front end from the Perlbal pool",
        description="Remove one front end from the pool without dropping requests: no new "
        "request goes to it, and the run waits until its open connections have finished.",
        category=Category.OPERATE,
        form=DrainForm,
        script=_drain,
        timeout=3700,
        changes_host=True,
        service_kinds=PERLBAL,
        as_root=True,
    )
)
RECIPES.append(
    Recipe(
        name="perlbal_pool_status",
        title="Perlbal pool status",
        description="The pool's front ends, each one's state (does it answer HTTP), requests "
        "sent and open connections; fails when one is down or the pool is empty.",
        category=Category.CHECK,
        form=PoolForm,
        script=_pool_status,
        timeout=60,
        service_kinds=PERLBAL,
        as_root=True,
    )
)
