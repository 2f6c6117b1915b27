"""The registry of recipes: typed parameters in, an exact bash script out.

A recipe's form validates every parameter (choices, patterns, ranges); its `script` function
builds the bash script from the cleaned values with every value passed through `q` (shlex.quote).
Secret parameters never enter the script text: the script reads them from environment variables
that the worker sets on stdin, ahead of the script, and they are stored only encrypted.

What a recipe is lives in `base`; each recipe module imports `base` (never this package) and
lists its recipes in `RECIPES`. The registry is built here from one explicit list of modules,
one per service kind: importing a module registers nothing by itself.
"""

from . import (
    failover,
    frontend,
    health,
    maintenance,
    mariadb,
    mariadb_replica,
    nfs,
    perlbal,
    system,
)
from .base import (
    CATEGORY_ACTION,
    REGISTRY,
    STATUS_IN_PLACE,
    STATUS_MISSING,
    Category,
    Recipe,
    RecipeForm,
    get,
    register,
    render_status,
    secret_env,
)

MODULES = (
    system, mariadb, mariadb_replica, nfs, frontend, perlbal, failover, maintenance, health,
)  # fmt: skip
for _module in MODULES:
    for _recipe in _module.RECIPES:
        register(_recipe)

__all__ = [
    "MODULES",
    "CATEGORY_ACTION",
    "REGISTRY",
    "Category",
    "Recipe",
    "RecipeForm",
    "get",
    "register",
    "render_status",
    "secret_env",
    "STATUS_IN_PLACE",
    "STATUS_MISSING",
]
