"""What a recipe is, and the registry it joins: the base every recipe module imports.

Kept apart from the package's __init__ (which imports every recipe module to register it) so
that no recipe module imports the package that imports it: no import cycle.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db import models

from remora_admin.access.policy import Action


class Category(models.TextChoices):
    CHECK = "check", "Check"
    OPERATE = "operate", "Operate"
    PROVISION = "provision", "Provision"
    MAINTENANCE = "maintenance", "Maintenance"


CATEGORY_ACTION = {
    Category.CHECK: Action.OPERATE,
    Category.OPERATE: Action.OPERATE,
    Category.PROVISION: Action.PROVISION,
    Category.MAINTENANCE: Action.OPERATE,
}


class RecipeForm(forms.Form):
    """Recipe forms get the host they will run on, to offer only what fits it."""

    def __init__(self, *args: Any, host: Any = None, fill_missing: bool = False, **kwargs: Any):
        self.host = host
        self.fill_missing = fill_missing
        super().__init__(*args, **kwargs)

    def take_proposals(self) -> None:
        """A value left out of bound parameters takes the field's initial value (the
        inventory's proposal): the planner and the API pass only what differs. A field sent
        empty is the person's choice and is checked; a password is never proposed. Forms whose
        every field has a proposal call it at the end of `__init__`; others get it with
        `fill_missing=True` (a browser leaves out an unticked box, which is no omission)."""
        if not self.is_bound:
            return
        data = self.data.copy()
        for name, field in self.fields.items():
            secret = isinstance(field.widget, forms.PasswordInput)
            if name not in data and field.initial not in (None, "") and not secret:
                data[name] = field.initial
        self.data = data

    def full_clean(self) -> None:
        if self.fill_missing:
            self.take_proposals()
        super().full_clean()


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    description: str
    category: str
    form: type[RecipeForm]
    script: Callable[[dict[str, Any]], str]
    timeout: int = 120
    changes_host: bool = False
    service_kinds: tuple[str, ...] = ()  # empty: any host
    secret_fields: tuple[str, ...] = ()
    action: Action | None = None  # defaults to the category's action
    as_root: bool = False  # run through the SSH user's passwordless sudo
    # The status companion: a script that exits 0 when what this recipe makes is in place on
    # the host, 3 when it is not (saying what is missing), anything else on an error. The
    # planner and the health checks ask the host through it, never the database.
    status: Callable[[dict[str, Any]], str] | None = None

    @property
    def needs(self) -> Action:
        return self.action or CATEGORY_ACTION[self.category]

    def applies_to(self, host: Any) -> bool:
        if not self.service_kinds:
            return True
        kinds = {s.kind for s in host.services.all()}
        return bool(kinds & set(self.service_kinds))

    def render(self, params: dict[str, Any]) -> str:
        """The exact script, secrets left as environment variable references."""
        public = {k: v for k, v in params.items() if k not in self.secret_fields}
        for name in self.secret_fields:
            public[name] = f'"${secret_env(name)}"'
        body = self.script(public).strip("\n")
        return f"set -euo pipefail\n{body}\n"


STATUS_IN_PLACE = 0
STATUS_MISSING = 3


def render_status(recipe: "Recipe", params: dict[str, Any]) -> str | None:
    """The recipe's status companion as an exact script, or None when it has none."""
    if recipe.status is None:
        return None
    public = {k: v for k, v in params.items() if k not in recipe.secret_fields}
    return f"set -euo pipefail\n{recipe.status(public).strip(chr(10))}\n"


def secret_env(name: str) -> str:
    return f"REMORA_SECRET_{name.upper()}"


REGISTRY: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    if recipe.name in REGISTRY:
        raise ValueError(f"Recipe {recipe.name} is registered twice.")
    REGISTRY[recipe.name] = recipe
    return recipe


def get(name: str) -> Recipe | None:
    return REGISTRY.get(name)
