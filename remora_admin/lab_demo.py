"""`make run` with the lab up: the demo inventory points at the lab's real Debian hosts.

The lab (`make lab`) writes what the console needs into a state file (REMORA_LAB_STATE_FILE):
each host's SSH relay address, its lab (service) address, its host key, and the key its deploy
account trusts. The app never imports the lab; it reads that file. Every change goes through the
audited paths, as the lead admin's demo set-up: the hosts' addresses (save_audited), a
"lab-console" credential per zone, and each host key pinned through the one trust path once
the key the host presents over its relay matches the lab's own record (the out-of-band check).
"""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from hosts.changes import save_audited
from hosts.credentials import encrypt, fingerprint, parse_private_key
from hosts.models import Credential, Host
from jobs import ssh
from jobs.hostkeys import trust_host_key
from remora_admin.audit.log import record

CREDENTIAL = "lab-console"
HOW = "demo set-up: the key the host presents matches the lab's own record of it"


class LabUnusable(Exception):
    pass


def lab_state() -> dict | None:
    """The lab's state file, or None when the lab is not up."""
    path = Path(settings.REMORA_LAB_STATE_FILE)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabUnusable(f"{path} cannot be read ({exc}); run `make lab` again") from None


def lead_admin() -> Any:
    admin = get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk")
    if not admin.exists():
        raise LabUnusable("no active superuser to record the demo set-up as")
    return admin.first()


def _credential(zone, private_text: str, actor) -> Credential:
    private, kind, public = parse_private_key(private_text)
    existing = Credential.objects.filter(zone=zone, name=CREDENTIAL).first()
    if existing is not None and existing.fingerprint == fingerprint(public):
        return existing
    credential = existing or Credential(zone=zone, name=CREDENTIAL, created_by=actor)
    credential.key_type = kind
    credential.public_key = public
    credential.fingerprint = fingerprint(public)
    credential.encrypted_private_key = encrypt(private)
    with transaction.atomic():
        credential.save()
        record(
            "credential.created" if existing is None else "credential.updated",
            actor=actor,
            target=credential,
            details={"key_type": kind, "fingerprint": credential.fingerprint, "via": "lab"},
        )
    return credential


def adopt(state: dict, actor: Any = None) -> list[str]:
    """Point the inventory's hosts at the lab's; returns what was done, a line per host."""
    actor = actor or lead_admin()
    private_text = Path(state["private_key_path"]).read_text()
    done = []
    for entry in state["hosts"]:
        host = Host.objects.select_related("zone").filter(name=entry["name"]).first()
        if host is None:
            continue
        host.address = entry["ssh_address"]
        host.ssh_port = entry["ssh_port"]
        host.ssh_user = entry["ssh_user"]
        host.service_address = entry["service_address"]
        host.credential = _credential(host.zone, private_text, actor)
        save_audited(host, actor=actor)
        if host.host_key != entry["host_key"]:
            seen = ssh.scan_host_key(host.address, host.ssh_port)
            if seen != entry["host_key"]:
                raise LabUnusable(
                    f"{host.name} presents another key than the lab recorded; not trusted"
                )
            trust_host_key(host, seen, actor=actor, how=HOW)
        done.append(
            f"{host.name}: ssh {host.ssh_user}@{host.address}:{host.ssh_port}, "
            f"lab address {host.service_address}, key pinned"
        )
    return done


def demo_hosts_unreachable() -> bool:
    """The demo inventory points at the seed's real machines (no lab adopted), or at a lab that
    is down (its hosts use the lab's credential but the lab has no state file)."""
    if Host.objects.filter(address__endswith=".sugarlabs.org").exists():
        return True
    try:
        lab_up = lab_state() is not None
    except LabUnusable:
        lab_up = False
    return not lab_up and Host.objects.filter(credential__name=CREDENTIAL).exists()
