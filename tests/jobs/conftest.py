"""Hosts in the inventory that point at the real sshd fixtures, with a real credential."""

import contextlib
import os
import signal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from hosts.credentials import encrypt, fingerprint, parse_private_key
from hosts.models import Credential, Host
from remora_admin.access.models import Grant, Role, Zone


def _marked_processes() -> list[int]:
    """This machine's processes that a run of the console marked (REMORA_RUN=remora-...).
    Only those in this PID namespace, where the loopback sshd runs them: a lab host's are in
    its own, and belong to whoever runs a recipe there (another test session, CI's)."""
    found = []
    ours = os.readlink("/proc/self/ns/pid")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns/pid") != ours:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(item.startswith(b"REMORA_RUN=remora-") for item in environ):
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_run_left_on_the_host():
    """The loopback sshd's "hosts" are this machine: a command a test left running (its worker
    killed on purpose) would hold the host-side lock for later tests. Kill what is left."""
    yield
    for pid in _marked_processes():
        with contextlib.suppress(OSError):  # (it ended meanwhile)
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def zone(db):
    return Zone.objects.create(name="lab", sensitivity=Zone.Sensitivity.STANDARD)


@pytest.fixture
def credential(zone, ssh_keys):
    private, kind, public = parse_private_key(ssh_keys.client_key_path.read_text())
    return Credential.objects.create(
        name="lab-key",
        zone=zone,
        key_type=kind,
        public_key=public,
        fingerprint=fingerprint(public),
        encrypted_private_key=encrypt(private),
    )


def host_for(sshd, zone, credential, name="lab1") -> Host:
    return Host.objects.create(
        name=name,
        address=sshd.address,
        ssh_port=sshd.port,
        ssh_user=sshd.user,
        zone=zone,
        credential=credential,
        host_key=sshd.host_public_key,
        host_key_fingerprint=fingerprint(sshd.host_public_key),
    )


@pytest.fixture
def lab_host(sshd_host, zone, credential):
    return host_for(sshd_host, zone, credential)


@pytest.fixture
def alice(zone):
    """A zone admin of the lab zone."""
    user = get_user_model().objects.create_user("alice", password="alice-pass-1")
    Grant.objects.create(user=user, role=Role.ZONE_ADMIN, zone=zone, reason="test")
    return user


@pytest.fixture
def carol(zone):
    """An operator of the lab zone."""
    user = get_user_model().objects.create_user("carol", password="carol-pass-1")
    Grant.objects.create(user=user, role=Role.OPERATOR, zone=zone, reason="test")
    return user


def request_for(user):
    """A request as a view would pass it to the launch functions."""
    from django.test import RequestFactory

    request = RequestFactory().post("/")
    request.user = user
    return request


@pytest.fixture
def make_recipe():
    """Register recipes for one test: make_recipe(name, script=lambda p: ..., **options)."""
    from django import forms

    from jobs.recipes import REGISTRY, Category, Recipe, RecipeForm, register

    made = []

    def make(name, script, *, fields=None, category=Category.OPERATE, **options):
        form = type(f"{name}Form", (RecipeForm,), dict(fields or {}))
        recipe = Recipe(
            name=name,
            title=name.replace("_", " ").capitalize(),
            description="A recipe made by a test.",
            category=category,
            form=form,
            script=script,
            **options,
        )
        register(recipe)
        made.append(name)
        return recipe

    make.forms = forms
    yield make
    for name in made:
        REGISTRY.pop(name, None)


@pytest.fixture
def run_now():
    """Launch `recipe` on `hosts` as `user` and execute the runs here, one after the other."""
    from jobs import launch as launching
    from jobs.tasks import execute_run

    def run(user, recipe, hosts, params=None, **options):
        runs = launching.launch(user, recipe, list(hosts), params or {}, **options)
        for r in runs:
            execute_run(r.pk)
            r.refresh_from_db()
        return runs

    return run


def output_of(run, stream=None) -> bytes:
    chunks = run.chunks.order_by("offset", "id")
    if stream:
        chunks = chunks.filter(stream=stream)
    return b"".join(bytes(c.data) for c in chunks)
