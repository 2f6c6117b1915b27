"""Perlbal: the reverse-proxy pool of front ends; add, drain and remove a front end."""

from .base import Recipe

RECIPES: list[Recipe] = []
