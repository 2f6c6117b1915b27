"""The failover monitor: keepalived (VRRP) holding the floating service address.

The seed's "heartbeat monitor" for the Perlbal pair (beamrider MASTER, remora2 BACKUP). It is
keepalived rather than Debian's `heartbeat` package: keepalived is one small daemon where
heartbeat pulls in pacemaker and corosync; it fails over in about a second where heartbeat took
3-6 s; heartbeat showed a 20 s split brain after a link came back; and keepalived is maintained.
A track script asks the local Perlbal for any HTTP answer every second: a host whose Perlbal
stops answering gives the address up (keepalived's FAULT state) to its peer.
"""

import ipaddress
import re

from django import forms
from django.core.exceptions import ValidationError

from hosts.models import Host, ServiceKind

from ..ssh import quote as q
from .base import Category, Recipe, RecipeForm
from .shell import APT_GET, ENSURE

CONFIG = "/etc/keepalived/keepalived.conf"
CHECK_SCRIPT = "/etc/keepalived/check_perlbal.sh"
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
INSTANCE = "remora_vip"

RECIPES: list[Recipe] = []


def _ipv4(value: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        return None


def peer_default(host) -> str:
    """The other half of the pair: another active host with a Perlbal or a heartbeat monitor,
    by its service address."""
    if host is None:
        return ""
    others = (
        Host.objects.filter(services__kind__in=[ServiceKind.PERLBAL, ServiceKind.HEARTBEAT])
        .exclude(pk=host.pk)
        .distinct()
        .order_by("name")
    )
    for other in others:
        if _ipv4(other.reach_address):
            return other.reach_address
    return ""


def _service_settings(host, kind) -> dict:
    if host is None:
        return {}
    service = host.services.filter(kind=kind).first()
    return service.effective_settings if service else {}


class FloatingAddressForm(RecipeForm):
    floating_address = forms.CharField(
        max_length=18,
        help_text="The floating service address with its prefix, in the host's subnet "
        "(e.g. 10.0.0.100/24).",
    )
    peer = forms.CharField(
        max_length=63,
        required=False,
        help_text="The other host of the pair: its service address or inventory name. "
        "Empty: VRRP multicast on the interface.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = _service_settings(self.host, ServiceKind.HEARTBEAT)
        if settings.get("floating_address"):
            self.fields["floating_address"].initial = settings["floating_address"]
        self.fields["peer"].initial = peer_default(self.host)

    def clean_floating_address(self) -> str:
        value = self.cleaned_data["floating_address"].strip()
        if "/" not in value:
            raise ValidationError("Give the prefix too, e.g. 10.0.0.100/24.")
        try:
            vip = ipaddress.IPv4Interface(value)
        except ValueError:
            raise ValidationError(
                f"“{value}” is not an IPv4 address with a prefix (e.g. 10.0.0.100/24)."
            ) from None
        net = vip.network
        if not 8 <= net.prefixlen <= 30:
            raise ValidationError("The prefix must be between /8 and /30.")
        if vip.ip in (net.network_address, net.broadcast_address):
            raise ValidationError(f"{vip.ip} is the network's own or broadcast address.")
        own = _ipv4(self.host.reach_address) if self.host else None
        if own is not None:
            if own not in net:
                raise ValidationError(
                    f"{vip.ip} is outside {self.host.name}'s subnet: {self.host.name} is "
                    f"{own}, not in {net}."
                )
            if own == vip.ip:
                raise ValidationError(f"{vip.ip} is {self.host.name}'s own address.")
        return str(vip)

    def clean_peer(self) -> str:
        value = self.cleaned_data["peer"].strip()
        if not value:
            return ""
        if _ipv4(value) is None:
            host = Host.objects.filter(name=value).first()
            if host is None or _ipv4(host.reach_address) is None:
                raise ValidationError(
                    f"“{value}” is neither an IPv4 address nor an inventory host with an IPv4 "
                    "service address."
                )
            value = host.reach_address
        if self.host is not None and value == self.host.reach_address:
            raise ValidationError("The peer is the other host of the pair, not this one.")
        return value


class FailoverForm(FloatingAddressForm):
    role = forms.ChoiceField(
        choices=[("MASTER", "MASTER (holds the address)"), ("BACKUP", "BACKUP")],
        help_text="The MASTER holds the address while it is healthy.",
    )
    priority = forms.IntegerField(
        min_value=1,
        max_value=254,
        required=False,
        help_text="Higher wins; empty: 150 for the MASTER, 100 for the BACKUP.",
    )
    router_id = forms.IntegerField(
        min_value=1, max_value=255, initial=51, help_text="The VRRP instance id (1-255)."
    )
    interface = forms.CharField(max_length=15, initial="eth0")
    check_port = forms.IntegerField(
        min_value=1,
        max_value=65535,
        initial=80,
        help_text="The local Perlbal's port; the track script asks it for an HTTP answer.",
        error_messages={
            "min_value": "A port is between 1 and 65535.",
            "max_value": "A port is between 1 and 65535.",
        },
    )
    field_order = ["floating_address", "role", "priority", "peer", "router_id", "interface"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        host = self.host
        primary = host is not None and host.services.filter(kind=ServiceKind.MYSQL_MASTER).exists()
        self.fields["role"].initial = "MASTER" if primary else "BACKUP"
        perlbal = _service_settings(host, ServiceKind.PERLBAL)
        if perlbal.get("port"):
            self.fields["check_port"].initial = perlbal["port"]

    def clean_interface(self) -> str:
        value = self.cleaned_data["interface"].strip()
        if not IFNAME_RE.match(value):
            raise ValidationError("An interface name is up to 15 letters, digits, . _ or -.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("role") and not data.get("priority"):
            data["priority"] = 150 if data["role"] == "MASTER" else 100
        return data


def _config(p: dict) -> list[str]:
    peer = p.get("peer") or ""
    unicast = ["    unicast_peer {", f"        {peer}", "    }"] if peer else []
    return [
        "# Written by Remora Admin (the failover_monitor recipe); changes here are overwritten.",
        "global_defs {",
        "    script_user root",
        "    enable_script_security",
        "}",
        "",
        "vrrp_script chk_perlbal {",
        f'    script "{CHECK_SCRIPT}"',
        "    interval 1",
        "    timeout 2",
        "    fall 2",
        "    rise 2",
        "}",
        "",
        f"vrrp_instance {INSTANCE} {{",
        f"    state {p['role']}",
        f"    interface {p['interface']}",
        f"    virtual_router_id {int(p['router_id'])}",
        f"    priority {int(p['priority'])}",
        "    advert_int 1",
        *unicast,
        "    virtual_ipaddress {",
        f"        {p['floating_address']} dev {p['interface']}",
        "    }",
        "    track_script {",
        "        chk_perlbal",
        "    }",
        "}",
    ]


def _check_lines(p: dict) -> list[str]:
    return [
        "#!/bin/sh",
        "# Written by Remora Admin: does the local Perlbal answer HTTP at all?",
        f"exec /usr/bin/curl -s -o /dev/null -m 2 http://127.0.0.1:{int(p['check_port'])}/",
    ]


def _lines(lines: list[str]) -> str:
    return " ".join(q(line) for line in lines)


def _render_files(p: dict) -> str:
    """Writes the wanted configuration and check script to "$want_conf" and "$want_check"."""
    return f"""
want_conf=$(mktemp)
want_check=$(mktemp)
trap 'rm -f "$want_conf" "$want_check"' EXIT
printf '%s\\n' {_lines(_config(p))} >"$want_conf"
printf '%s\\n' {_lines(_check_lines(p))} >"$want_check"
"""


def _install(p: dict) -> str:
    vip = p["floating_address"].split("/")[0]
    return (
        APT_GET
        + ENSURE
        + f"""
iface={q(p["interface"])}
vip={q(vip)}
# The floating address must lie in a subnet the interface is directly on (asked of its own
# networks, not of a route: the host holding the address routes it to itself).
ip2int() {{
  local IFS=.; local -a o; read -r -a o <<<"$1"
  echo $(( (o[0] << 24) + (o[1] << 16) + (o[2] << 8) + o[3] ))
}}
on_subnet=0
nets=$(ip -4 -o route show dev "$iface" scope link proto kernel 2>/dev/null | awk '{{print $1}}')
for net in $nets; do
  case "$net" in */*) ;; *) continue ;; esac
  bits=${{net#*/}}
  mask=$(( bits == 0 ? 0 : (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF ))
  if (( ($(ip2int "$vip") & mask) == ($(ip2int "${{net%/*}}") & mask) )); then on_subnet=1; fi
done
if [ "$on_subnet" != 1 ]; then
  echo "$vip is not in a subnet of $iface here (its networks: ${{nets:-none}})" >&2
  exit 1
fi
changed=0
ensure_installed keepalived curl
{_render_files(p)}
if ! cmp -s "$want_check" {q(CHECK_SCRIPT)}; then
  install -m 0755 -o root -g root "$want_check" {q(CHECK_SCRIPT)}
  echo "Wrote {CHECK_SCRIPT} (asks the local Perlbal on port {int(p["check_port"])})"
  changed=1
fi
config_changed=0
if ! cmp -s "$want_conf" {q(CONFIG)}; then
  install -m 0640 -o root -g root "$want_conf" {q(CONFIG)}
  echo "Wrote {CONFIG}: {p["role"]} priority {int(p["priority"])} for {p["floating_address"]}"
  config_changed=1
  changed=1
fi
ensure_running keepalived reload keepalived
sleep 1
systemctl is-active --quiet keepalived || {{
  echo "keepalived is not running:" >&2
  journalctl -u keepalived --no-pager -n 20 >&2 || true
  exit 1
}}
if [ "$changed" = 0 ]; then
  echo "keepalived {p["role"]} for {p["floating_address"]}: already in place"
else
  echo "keepalived runs: {p["role"]} priority {int(p["priority"])}, VRRP id \\
{int(p["router_id"])} on {p["interface"]}, floating address {p["floating_address"]}"
fi
"""
    )


def _status(p: dict) -> str:
    return f"""
{_render_files(p)}
missing=()
dpkg-query -W -f='${{Status}}' keepalived 2>/dev/null | grep -q 'ok installed' \\
  || missing+=("the keepalived package is not installed")
systemctl is-active --quiet keepalived || missing+=("keepalived is not active")
cmp -s "$want_conf" {q(CONFIG)} || missing+=("{CONFIG} is not the wanted configuration")
cmp -s "$want_check" {q(CHECK_SCRIPT)} || missing+=("{CHECK_SCRIPT} is not in place")
if [ "${{#missing[@]}}" -gt 0 ]; then
  printf 'missing: %s\\n' "${{missing[@]}}"
  exit 3
fi
echo "keepalived active, {p["role"]} for {p["floating_address"]}"
"""


def _failover_status(p: dict) -> str:
    vip = p["floating_address"].split("/")[0]
    peer = p.get("peer") or ""
    return f"""
vip={q(vip)}
peer={q(peer)}
state=$(journalctl -u keepalived --no-pager -n 500 2>/dev/null \\
  | grep -o 'Entering [A-Z]* STATE' | tail -n 1 | awk '{{print $2}}') || true
if systemctl is-active --quiet keepalived; then
  echo "keepalived: active, last VRRP state ${{state:-unknown}}"
else
  echo "keepalived: not active here"
fi
if ip -4 -o addr show | awk '{{print $4}}' | grep -q "^$vip/"; then
  echo "$vip is held by this host ($(hostname))"
  exit 0
fi
ping -c 1 -W 1 "$vip" >/dev/null 2>&1 || true
vip_mac=$(ip neigh show "$vip" | awk '/lladdr/ {{print $5}}')
if [ -z "$vip_mac" ]; then
  echo "$vip: no host answers for it" >&2
  exit 1
fi
if [ -n "$peer" ]; then
  ping -c 1 -W 1 "$peer" >/dev/null 2>&1 || true
  peer_mac=$(ip neigh show "$peer" | awk '/lladdr/ {{print $5}}')
  if [ "$vip_mac" = "$peer_mac" ]; then
    echo "$vip is held by the peer $peer (MAC $vip_mac)"
    exit 0
  fi
fi
echo "$vip is held by another host (MAC $vip_mac), not this one"
"""


RECIPES.append(
    Recipe(
        name="failover_monitor",
        title="Failover monitor (keepalived)",
        description="The pair's floating service address with keepalived (VRRP): the MASTER "
        "holds it while its Perlbal answers, the BACKUP takes it over within about a second. "
        "keepalived rather than Debian's heartbeat: lighter (one daemon, no pacemaker or "
        "corosync), faster to fail over, and maintained.",
        category=Category.PROVISION,
        form=FailoverForm,
        script=_install,
        timeout=600,
        changes_host=True,
        as_root=True,
        status=_status,
    )
)
RECIPES.append(
    Recipe(
        name="failover_status",
        title="Who holds the floating address",
        description="Whether this host holds the floating address, keepalived's last VRRP "
        "state, and otherwise which host answers for the address (the peer or another).",
        category=Category.CHECK,
        form=FloatingAddressForm,
        script=_failover_status,
        timeout=60,
        as_root=True,
    )
)
