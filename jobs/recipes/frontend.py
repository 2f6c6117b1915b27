"""The PHP front end: Apache and PHP, the application from git, its database and
data-directory settings."""

from .base import Recipe

RECIPES: list[Recipe] = []
