"""Granting, changing and revoking roles, and creating and deactivating people.

Each function checks the acting user's right, validates, changes, and audits in one transaction.
A refusal raises `AccessChangeRefused` with the reason in words after recording the attempt;
nothing else changes.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from remora_admin.audit.log import record

from .models import GLOBAL_ROLES, Grant, Role, Zone
from .policy import Action, can, forget

User = get_user_model()
DELEGABLE_ROLES = {Role.VIEWER, Role.OPERATOR}


class AccessChangeRefused(Exception):
    pass


def _refuse(request: HttpRequest, action: str, message: str, details: dict[str, Any]) -> None:
    record(f"{action}.refused", request=request, details={**details, "reason": message})
    raise AccessChangeRefused(message)


def grant_details(grant: Grant) -> dict[str, Any]:
    return {
        "holder": grant.holder_name,
        "role": grant.role,
        "zone": grant.zone.name if grant.zone_id else None,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        "reason": grant.reason,
    }


def may_grant(actor: Any, role: str, zone: Zone | None) -> str:
    """Why `actor` may not grant `role` in `zone`; the empty string when they may."""
    if can(actor, Action.MANAGE_ACCESS):
        return ""
    if zone is None or role in GLOBAL_ROLES:
        return "Only a superadmin grants global roles."
    if zone.is_restricted:
        return f"Only a superadmin grants access in the restricted zone {zone.name}."
    if role not in DELEGABLE_ROLES:
        return "A zone admin grants only the viewer and operator roles."
    if not can(actor, Action.GRANT_IN_ZONE, zone):
        return f"You may not grant access in zone {zone.name}."
    return ""


def create_grant(
    request: HttpRequest,
    *,
    role: str,
    zone: Zone | None,
    reason: str,
    user: Any = None,
    group: Group | None = None,
    expires_at: datetime | None = None,
) -> Grant:
    actor = request.user
    holder = user.get_username() if user is not None else (group.name if group else "")
    attempt = {
        "holder": holder,
        "role": role,
        "zone": zone.name if zone else None,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    problem = ""
    if (user is None) == (group is None):
        problem = "Choose exactly one person or group to grant to."
    elif user is not None and not user.is_active:
        problem = f"{holder} is deactivated; reactivate the account first."
    elif role not in Role.values:
        problem = f"Unknown role {role!r}."
    elif role in GLOBAL_ROLES and zone is not None:
        problem = f"The {Role(role).label.lower()} role is global; leave the zone empty."
    elif role not in GLOBAL_ROLES and zone is None:
        problem = f"The {Role(role).label.lower()} role needs a zone."
    elif not reason.strip():
        problem = "Give a reason for the grant; reviewers read it."
    elif expires_at is not None and expires_at <= timezone.now():
        problem = "The expiry is in the past; choose a time in the future or none."
    else:
        problem = may_grant(actor, role, zone)
    if not problem:
        existing = Grant.objects.active().filter(role=role, zone=zone, user=user, group=group)
        if existing.exists():
            problem = f"{holder} already holds {Role(role).label.lower()} there."
    if problem:
        _refuse(request, "grant", problem, attempt)
    with transaction.atomic():
        grant = Grant.objects.create(
            user=user,
            group=group,
            role=role,
            zone=zone,
            reason=reason.strip(),
            expires_at=expires_at,
            granted_by=actor,
        )
        record(
            "grant.created",
            request=request,
            target=grant,
            zone=zone.name if zone else "",
            details={"after": grant_details(grant)},
        )
    forget(actor)
    return grant


def change_expiry(request: HttpRequest, grant: Grant, expires_at: datetime | None) -> None:
    problem = may_grant(request.user, grant.role, grant.zone)
    if not problem and not grant.is_active():
        problem = "This grant is no longer active; make a new one."
    if not problem and expires_at is not None and expires_at <= timezone.now():
        problem = "The expiry is in the past; revoke the grant instead."
    if problem:
        _refuse(request, "grant.change", problem, grant_details(grant))
    with transaction.atomic():
        before = grant_details(grant)
        grant.expires_at = expires_at
        grant.save(update_fields=["expires_at"])
        record(
            "grant.changed",
            request=request,
            target=grant,
            zone=grant.zone.name if grant.zone_id else "",
            details={"before": before, "after": grant_details(grant)},
        )


def revoke_grant(request: HttpRequest, grant: Grant, reason: str) -> None:
    problem = may_grant(request.user, grant.role, grant.zone)
    if not problem and grant.revoked_at is not None:
        problem = "This grant is already revoked."
    if not problem and not reason.strip():
        problem = "Give a reason for revoking the grant."
    if problem:
        _refuse(request, "grant.revoke", problem, grant_details(grant))
    with transaction.atomic():
        before = grant_details(grant)
        grant.revoked_at = timezone.now()
        grant.revoked_by = request.user
        grant.revoke_reason = reason.strip()
        grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        record(
            "grant.revoked",
            request=request,
            target=grant,
            zone=grant.zone.name if grant.zone_id else "",
            details={"before": before, "after": {"revoked": True, "reason": grant.revoke_reason}},
        )


def set_password_link(request: HttpRequest, user: Any) -> str:
    """A one-time link for the user to choose a password (void once used or after a day)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("access:set_password", args=[uid, token])
    return request.build_absolute_uri(path)


def create_person(
    request: HttpRequest, *, username: str, email: str, first_name: str = "", last_name: str = ""
) -> Any:
    if not can(request.user, Action.MANAGE_PEOPLE):
        _refuse(request, "user.create", "You may not create accounts.", {"username": username})
    if User.objects.filter(username__iexact=username).exists():
        _refuse(
            request, "user.create", f"The user name {username} is taken.", {"username": username}
        )
    with transaction.atomic():
        user = User(username=username, email=email, first_name=first_name, last_name=last_name)
        user.set_unusable_password()
        user.full_clean()
        user.save()
        record(
            "user.created",
            request=request,
            target=user,
            details={"after": {"username": username, "email": email}},
        )
    return user


def may_manage_person(actor: Any, person: Any) -> str:
    """Why `actor` may not deactivate `person`; empty when they may."""
    if person.pk == actor.pk:
        return "You cannot deactivate your own account."
    if can(actor, Action.MANAGE_ACCESS):
        return ""
    if person.is_superuser or person.is_staff:
        return "Only a superadmin deactivates an administrator."
    held = Q(user=person) | Q(group__in=person.groups.all())
    for grant in Grant.objects.active().filter(held).select_related("zone"):
        if grant.zone is None or not can(actor, Action.GRANT_IN_ZONE, grant.zone):
            return f"{person.get_username()} holds access beyond the zones you administer."
    if not can(actor, Action.MANAGE_PEOPLE):
        return "You may not manage accounts."
    return ""


def deactivate_person(request: HttpRequest, person: Any, reason: str) -> None:
    problem = may_manage_person(request.user, person)
    if not problem and not person.is_active:
        problem = f"{person.get_username()} is already deactivated."
    if not problem and not reason.strip():
        problem = "Give a reason for deactivating the account."
    if problem:
        _refuse(request, "user.deactivate", problem, {"username": person.get_username()})
    with transaction.atomic():
        person.is_active = False
        person.save(update_fields=["is_active"])
        record(
            "user.deactivated",
            request=request,
            target=person,
            details={"before": {"is_active": True}, "after": {"is_active": False}, "why": reason},
        )
