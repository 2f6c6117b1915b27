"""Maintenance: security upgrades with a reboot-required report, disk usage against a threshold."""

from .base import Recipe

RECIPES: list[Recipe] = []
