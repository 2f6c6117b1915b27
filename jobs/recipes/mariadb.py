"""MariaDB master and its shadow replica: install, replicate, back up, restore, promote."""

from .base import Recipe

RECIPES: list[Recipe] = []
