"""Where the lab keeps things, its hosts and their addresses: one place, no magic numbers."""

import os
from dataclasses import dataclass
from pathlib import Path

# A second lab can run beside the first (another developer's tests, a helper's): give it a
# number with REMORA_LAB_NUMBER (1-9); its names, networks and directories all differ.
NUMBER = int(os.environ.get("REMORA_LAB_NUMBER", "0") or 0)
_SUFFIX = f"-{NUMBER}" if NUMBER else ""
CACHE = Path(os.environ.get("REMORA_LAB_CACHE", "/var/cache/remora-lab"))  # base, packages
STATE = Path(os.environ.get("REMORA_LAB_STATE", f"/var/lib/remora-lab{_SUFFIX}"))  # hosts' layers
RUN = Path(os.environ.get("REMORA_LAB_RUN", f"/run/remora-lab{_SUFFIX}"))  # sockets, pids, state
PREFIX = f"remora-lab{_SUFFIX}"  # namespaces, cgroups and interfaces carry it: cleanup finds them
LAB_NETNS = PREFIX
SUBNET = f"10.{77 + NUMBER}.0"  # the lab's bridge network, inside the lab namespace only
BRIDGE_ADDRESS = f"{SUBNET}.1"
APT_PROXY_PORT = 3142
RELAY_NET = f"127.0.{77 + NUMBER}"  # loopback addresses of the SSH relays on the machine
SSH_PORT = 22
DEPLOY_USER = "deploy"
SUITE = "bookworm"


@dataclass(frozen=True)
class LabHost:
    name: str
    index: int  # 2.. : its lab address, MAC and relay address end in it

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.index}"

    @property
    def relay_address(self) -> str:
        return f"{RELAY_NET}.{self.index}"

    @property
    def mac(self) -> str:
        return f"02:77:00:00:00:{self.index:02x}"  # stable: no stale ARP after a reboot

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def veth(self) -> str:
        return f"rl{NUMBER}-{self.name}"[:15]


# The seed's machines.
HOSTS = (LabHost("beamrider", 2), LabHost("sunjammer", 3), LabHost("remora2", 4))
BY_NAME = {h.name: h for h in HOSTS}
# Hosts that only some tests boot, never `make lab` nor the lab fixtures: a fresh server to install
# the console on, and one for a second machine's workers (tests/lab/test_install.py). `down` and
# a new `up` clear them as well.
CONSOLE = LabHost("console", 5)
WORKER = LabHost("worker", 6)
EXTRA_HOSTS = (CONSOLE, WORKER)
