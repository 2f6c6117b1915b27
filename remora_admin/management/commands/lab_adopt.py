"""`manage.py lab_adopt STATE_FILE`: point the inventory's hosts at the lab's, as `make run`
does (remora_admin/lab_demo.py), from a state file given on the command line. For a console
installed on a lab host (tests/lab/test_install.py), which reaches the other hosts at their lab
addresses; every change is audited as the lead admin's (or --as USER's) set-up."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs import ssh
from remora_admin import lab_demo


class Command(BaseCommand):
    help = (
        "Point the inventory's hosts at the lab's hosts named in STATE_FILE (the lab's state "
        "format): SSH address, service address, a lab-console credential per zone, each host "
        "key pinned once the host presents the recorded one. Audited."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("state_file", help="JSON: private_key_path and hosts[]")
        parser.add_argument("--as", dest="actor", help="the superuser to record it as")

    def handle(self, *args, state_file: str, actor: str | None, **options) -> None:
        try:
            state = json.loads(Path(state_file).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"{state_file} cannot be read: {exc}") from None
        who = None
        if actor:
            who = get_user_model().objects.filter(username=actor, is_superuser=True).first()
            if who is None:
                raise CommandError(f"no superuser named {actor!r}")
        try:
            for line in lab_demo.adopt(state, actor=who):
                self.stdout.write(line)
        except (lab_demo.LabUnusable, ssh.SSHFailure, KeyError) as exc:
            raise CommandError(f"not adopted: {exc}") from None
