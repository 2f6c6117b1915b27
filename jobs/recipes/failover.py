"""The failover monitor: keepalived (VRRP) holding the floating service address."""

from .base import Recipe

RECIPES: list[Recipe] = []
