"""The registry of recipes: typed parameters in, an exact bash script out.

A recipe's form validates every parameter (choices, patterns, ranges); its `script` function
builds the bash script from the cleaned values with every value passed through `q` (shlex.quote).
Secret parameters never enter the script text: the script reads them from environment variables
that the worker sets on stdin, ahead of the script, and they are stored only encrypted.

What a recipe is lives in `base`; each recipe module imports `base` (never this package) and is
imported here to register its recipes.
"""

from . import system  # noqa: F401  (registers the recipes)
from .base import (
    CATEGORY_ACTION,
    REGISTRY,
    Category,
    Recipe,
    RecipeForm,
    get,
    register,
    secret_env,
)

__all__ = [
    "CATEGORY_ACTION",
    "REGISTRY",
    "Category",
    "Recipe",
    "RecipeForm",
    "get",
    "register",
    "secret_env",
]
