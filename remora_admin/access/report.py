"""Who can control each zone: every person, what they can do there, through which grants, until
when. The dashboard's counts and the access report page both come from here."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django_otp import user_has_device

from .models import GLOBAL_ROLES, Grant, Zone
from .policy import Action, role_allows

CAPABILITIES = [
    ("view", Action.VIEW),
    ("operate", Action.OPERATE),
    ("provision", Action.PROVISION),
    ("approve", Action.APPROVE),
]


@dataclass
class Holder:
    user: Any
    roles: set[str] = field(default_factory=set)
    grants: list[Grant] = field(default_factory=list)
    superuser: bool = False
    has_2fa: bool = False

    def can(self, capability: str) -> bool:
        action = dict(CAPABILITIES)[capability]
        return self.superuser or any(role_allows(r, action) for r in self.roles)

    @property
    def capabilities(self) -> list[str]:
        return [name for name, _ in CAPABILITIES if self.can(name)]

    @property
    def until(self) -> datetime | None:
        """When the last of the grants giving access ends; None when one never does."""
        if self.superuser or any(g.expires_at is None for g in self.grants):
            return None
        return max(g.expires_at for g in self.grants)


@dataclass
class ZoneAccess:
    zone: Zone
    holders: list[Holder]
    limit: int | None

    @property
    def controllers(self) -> list[Holder]:
        return [h for h in self.holders if h.can("operate")]

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and len(self.controllers) > self.limit

    @property
    def grants_without_expiry(self) -> list[Grant]:
        return [g for h in self.controllers for g in h.grants if g.expires_at is None]


def zone_access(
    zones: list[Zone] | None = None, *, default_limit: int | None = None
) -> list[ZoneAccess]:
    """One entry per zone with everyone who holds a role there (directly, by group or globally)."""
    User = get_user_model()
    zones = list(zones if zones is not None else Zone.objects.all())
    grants = list(
        Grant.objects.active()
        .filter(Q(zone__in=zones) | Q(role__in=list(GLOBAL_ROLES)))
        .select_related("user", "group", "zone")
        .prefetch_related("group__user_set")
    )
    superusers = list(User.objects.filter(is_superuser=True, is_active=True))
    result = []
    for zone in zones:
        holders: dict[int, Holder] = {}
        for user in superusers:
            holders[user.pk] = Holder(user, superuser=True)
        for grant in grants:
            if grant.zone_id not in (None, zone.pk):
                continue
            members = [grant.user] if grant.user_id else list(grant.group.user_set.all())
            for user in members:
                if not user.is_active:
                    continue
                h = holders.setdefault(user.pk, Holder(user))
                h.roles.add(grant.role)
                h.grants.append(grant)
        for h in holders.values():
            h.has_2fa = user_has_device(h.user)
        limit = zone.controller_limit
        if limit is None and zone.is_restricted:
            limit = default_limit
        ordered = sorted(holders.values(), key=lambda h: (-len(h.capabilities), h.user.username))
        result.append(ZoneAccess(zone, ordered, limit))
    return result
