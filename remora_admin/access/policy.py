"""The one policy: may this user do this action to this target?

Roles are fixed sets of actions (the table below). A user holds roles through active grants,
to them or to a group they belong to, in one zone or globally. Deny by default: an action not in
the table for a role the user holds in the target's zone is refused. Targets are zones, or any
object that has a `zone` (a host) or a `host` (a service, a run); the policy reads nothing else of
them. Results are cached on the user object, which lives for one request.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db.models import Q, QuerySet

from .models import GLOBAL_ROLES, Grant, Role, Zone


class Action(StrEnum):
    VIEW = "view"  # see the zone's hosts, services, runs and schedules
    OPERATE = "operate"  # launch check and operate recipes
    CANCEL_OWN_RUN = "cancel_own_run"
    PROVISION = "provision"  # launch provisioning recipes
    APPROVE = "approve"  # approve or reject other people's runs
    CANCEL_ANY_RUN = "cancel_any_run"
    EDIT_INVENTORY = "edit_inventory"
    MANAGE_SCHEDULES = "manage_schedules"
    MANAGE_CREDENTIALS = "manage_credentials"
    TRUST_HOST_KEY = "trust_host_key"
    GRANT_IN_ZONE = "grant_in_zone"  # grant viewer/operator in a standard zone
    MANAGE_PEOPLE = "manage_people"  # create and deactivate accounts
    VIEW_ACCESS_REPORT = "view_access_report"
    READ_AUDIT = "read_audit"  # global
    READ_ALL_RUNS = "read_all_runs"  # global
    MANAGE_ACCESS = "manage_access"  # global: zones and every grant
    RUN_ADHOC = "run_adhoc"  # global: arbitrary commands


A = Action
_VIEWER = {A.VIEW}
_OPERATOR = _VIEWER | {A.OPERATE, A.CANCEL_OWN_RUN}
_ZONE_ADMIN = _OPERATOR | {
    A.PROVISION,
    A.APPROVE,
    A.CANCEL_ANY_RUN,
    A.EDIT_INVENTORY,
    A.MANAGE_SCHEDULES,
    A.MANAGE_CREDENTIALS,
    A.TRUST_HOST_KEY,
    A.GRANT_IN_ZONE,
    A.MANAGE_PEOPLE,
    A.VIEW_ACCESS_REPORT,
}

ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.ZONE_ADMIN: frozenset(_ZONE_ADMIN),
    Role.AUDITOR: frozenset({A.VIEW, A.VIEW_ACCESS_REPORT, A.READ_AUDIT, A.READ_ALL_RUNS}),
    Role.SUPERADMIN: frozenset(Action),
}

# Actions that only a global role can hold; asking for them on a zone asks globally.
GLOBAL_ACTIONS = frozenset({A.READ_AUDIT, A.READ_ALL_RUNS, A.MANAGE_ACCESS, A.RUN_ADHOC})
# What needs no second factor in a restricted zone: looking.
LOOK_ONLY = frozenset({A.VIEW, A.VIEW_ACCESS_REPORT, A.READ_AUDIT, A.READ_ALL_RUNS})


@dataclass(frozen=True)
class Held:
    role: str
    zone_id: int | None
    grant: Grant | None  # None for Django superusers, who are superadmins by definition


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # "", "no_role", "needs_2fa", "restricted_zone", "inactive"
    message: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def held_roles(user: Any) -> list[Held]:
    """The roles the user holds right now, each with the grant that gives it."""
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    cached = getattr(user, "_remora_held", None)
    if cached is not None:
        return cached
    held = [Held(Role.SUPERADMIN, None, None)] if user.is_superuser else []
    grants = (
        Grant.objects.active()
        .filter(Q(user=user) | Q(group__in=user.groups.all()))
        .select_related("zone", "group")
    )
    held += [Held(g.role, g.zone_id, g) for g in grants]
    user._remora_held = held
    return held


def forget(user: Any) -> None:
    """Drop the cached roles (after a grant changes within the same request)."""
    if hasattr(user, "_remora_held"):
        del user._remora_held


def zone_of(target: Any) -> Zone | None:
    if target is None or isinstance(target, Zone):
        return target
    if isinstance(target, Grant):
        return target.zone
    zone = getattr(target, "zone", None)
    if isinstance(zone, Zone):
        return zone
    host = getattr(target, "host", None)
    if host is not None:
        return zone_of(host)
    raise TypeError(f"The policy cannot tell which zone {type(target).__name__} belongs to.")


def is_verified(user: Any) -> bool:
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def _roles_allow(held: list[Held], action: Action, zone: Zone | None) -> bool:
    for h in held:
        if action not in ROLE_ACTIONS[h.role]:
            continue
        if h.role in GLOBAL_ROLES:
            return True
        if action in GLOBAL_ACTIONS:
            continue
        if zone is None or h.zone_id == zone.pk:
            return True
    return False


def decide(
    user: Any, action: Action, target: Any = None, *, second_factor: bool | None = None
) -> Decision:
    """The policy's answer with its reason; `can` is the yes/no form of it.

    `second_factor` says whether the user proved their second factor; by default it is read
    from the user's session (django-otp). The job worker passes True for runs whose launch
    was checked with it.
    """
    if user is None or not user.is_authenticated:
        return Decision(False, "no_role", "Sign in first.")
    if not user.is_active:
        return Decision(False, "inactive", "This account is deactivated.")
    zone = zone_of(target)
    held = held_roles(user)
    if not _roles_allow(held, action, zone):
        where = f" in zone {zone.name}" if zone else ""
        return Decision(
            False, "no_role", f"None of your roles allows {action.value.replace('_', ' ')}{where}."
        )
    superadmin = any(h.role == Role.SUPERADMIN for h in held)
    if action == A.GRANT_IN_ZONE and zone is not None and zone.is_restricted and not superadmin:
        return Decision(
            False,
            "restricted_zone",
            f"Only a superadmin grants access in the restricted zone {zone.name}.",
        )
    restricted = zone is not None and zone.is_restricted
    verified = is_verified(user) if second_factor is None else second_factor
    if restricted and action not in LOOK_ONLY and not verified:
        return Decision(
            False,
            "needs_2fa",
            f"Acting in the restricted zone {zone.name} needs two-factor authentication: "
            "set it up or verify your code on the Two-factor page.",
        )
    return Decision(True)


def can(user: Any, action: Action, target: Any = None) -> bool:
    return decide(user, action, target).allowed


def zones_where(user: Any, action: Action = A.VIEW) -> QuerySet[Zone]:
    """The zones in which the user's roles allow `action` (before any second-factor check)."""
    held = held_roles(user)
    if any(h.role in GLOBAL_ROLES and action in ROLE_ACTIONS[h.role] for h in held):
        return Zone.objects.all()
    ids = {h.zone_id for h in held if h.zone_id is not None and action in ROLE_ACTIONS[h.role]}
    return Zone.objects.filter(pk__in=ids)


def scope(queryset: QuerySet, user: Any, action: Action = A.VIEW, via: str = "zone") -> QuerySet:
    """Narrow any queryset to the rows in zones where the user may do `action`.

    `via` is the path from the model to its zone: "zone" for hosts, "host__zone" for services.
    """
    return queryset.filter(**{f"{via}__in": zones_where(user, action)})
