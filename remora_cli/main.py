"""The `remora` command's entry point: the group (base.py) with every command registered by
importing the modules that define them."""

from . import cmd_audit, cmd_inventory, cmd_lists, cmd_plan, cmd_runs, cmd_session  # noqa: F401
from .base import cli

__all__ = ["cli"]
