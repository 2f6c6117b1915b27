"""`python -m lab up|down|status|build`: the lab from the command line (`make lab`, `lab-down`,
`lab-status`; `build` makes the cached base only). Every failure is one line on stderr and a
non-zero exit."""

import argparse
import sys

from . import base, control
from .base import LabError
from .config import DEPLOY_USER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "build"])
    parser.add_argument("--purge", action="store_true", help="down: forget the hosts' layers")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            timings = control.up()
            if not timings.get("already_up"):
                _how_to_use()
        elif args.command == "build":
            control.require_root()
            path, seconds = base.build()
            print(f"base: {path} ({'cached' if seconds is None else f'built in {seconds:.0f} s'})")
        elif args.command == "down":
            control.down(purge=args.purge)
        else:
            _print_status()
    except LabError as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted; `make lab-down` clears what was started", file=sys.stderr)
        return 130
    return 0


def _how_to_use() -> None:
    key, _ = control.console_key()
    print("Hosts (Debian 12, systemd, sshd; deploy has passwordless sudo):")
    for row in control.status():
        print(f"  {row['name']:<10} ssh {DEPLOY_USER}@{row['ssh'].split(':')[0]} -i {key}"
              f"   (lab address {row['service_address']})")  # fmt: skip
    print("Now `make run`: the demo inventory points at these hosts. `make lab-down` ends it.")


def _print_status() -> None:
    rows = control.status()
    print(f"{'host':<10} {'state':<12} {'ssh (relay)':<17} {'lab address':<12} memory")
    for r in rows:
        memory = f"{r['memory_mib']} MiB" if r["memory_mib"] is not None else "-"
        state = r["state"] if r["relay"] == "up" or r["state"] == "stopped" else f"{r['state']}*"
        print(f"{r['name']:<10} {state:<12} {r['ssh']:<17} {r['service_address']:<12} {memory}")
    if all(r["state"] == "stopped" for r in rows):
        print("The lab is down: `make lab` starts it.")


if __name__ == "__main__":
    sys.exit(main())
