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
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from remora_admin.audit.log import record

from .models import GLOBAL_ROLES, Grant, Role, Zone
from .policy import Action, Decision, decide, decide_deactivate, decide_grant, forget

User = get_user_model()


class AccessChangeRefused(Exception):
    """A change the actor may not make, with the policy's reason code ("needs_2fa", ...)."""

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


def _invalid(message: str) -> Decision:
    return Decision(False, "invalid", message)


def _refuse(
    request: HttpRequest, action: str, problem: Decision, details: dict[str, Any], target=None
) -> None:
    record(
        f"{action}.refused",
        request=request,
        target=target,
        details={**details, "reason": problem.message, "code": problem.reason},
    )
    raise AccessChangeRefused(problem.message, problem.reason)


def grant_details(grant: Grant) -> dict[str, Any]:
    return {
        "holder": grant.holder_name,
        "role": grant.role,
        "zone": grant.zone.name if grant.zone_id else None,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        "reason": grant.reason,
    }


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
    problem: Decision | None = None
    if (user is None) == (group is None):
        problem = _invalid("Choose exactly one person or group to grant to.")
    elif user is not None and not user.is_active:
        problem = _invalid(f"{holder} is deactivated; reactivate the account first.")
    elif role not in Role.values:
        problem = _invalid(f"Unknown role {role!r}.")
    elif role in GLOBAL_ROLES and zone is not None:
        problem = _invalid(f"The {Role(role).label.lower()} role is global; leave the zone empty.")
    elif role not in GLOBAL_ROLES and zone is None:
        problem = _invalid(f"The {Role(role).label.lower()} role needs a zone.")
    elif not reason.strip():
        problem = _invalid("Give a reason for the grant; reviewers read it.")
    elif expires_at is not None and expires_at <= timezone.now():
        problem = _invalid("The expiry is in the past; choose a time in the future or none.")
    else:
        decision = decide_grant(actor, role, zone)
        problem = None if decision else decision
    if problem is None:
        existing = Grant.objects.active().filter(role=role, zone=zone, user=user, group=group)
        if existing.exists():
            problem = _invalid(f"{holder} already holds {Role(role).label.lower()} there.")
    if problem is not None:
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
    decision = decide_grant(request.user, grant.role, grant.zone)
    problem = None if decision else decision
    if problem is None and not grant.is_active():
        problem = _invalid("This grant is no longer active; make a new one.")
    if problem is None and expires_at is not None and expires_at <= timezone.now():
        problem = _invalid("The expiry is in the past; revoke the grant instead.")
    if problem is not None:
        _refuse(request, "grant.change", problem, grant_details(grant), grant)
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
    decision = decide_grant(request.user, grant.role, grant.zone)
    problem = None if decision else decision
    if problem is None and grant.revoked_at is not None:
        problem = _invalid("This grant is already revoked.")
    if problem is None and not reason.strip():
        problem = _invalid("Give a reason for revoking the grant.")
    if problem is not None:
        _refuse(request, "grant.revoke", problem, grant_details(grant), grant)
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
    decision = decide(request.user, Action.MANAGE_PEOPLE)
    if not decision:
        _refuse(request, "user.create", decision, {"username": username})
    if User.objects.filter(username__iexact=username).exists():
        taken = _invalid(f"The user name {username} is taken.")
        _refuse(request, "user.create", taken, {"username": username})
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


def deactivate_person(request: HttpRequest, person: Any, reason: str) -> None:
    decision = decide_deactivate(request.user, person)
    problem = None if decision else decision
    if problem is None and not person.is_active:
        problem = _invalid(f"{person.get_username()} is already deactivated.")
    if problem is None and not reason.strip():
        problem = _invalid("Give a reason for deactivating the account.")
    if problem is not None:
        _refuse(request, "user.deactivate", problem, {"username": person.get_username()}, person)
    with transaction.atomic():
        person.is_active = False
        person.save(update_fields=["is_active"])
        record(
            "user.deactivated",
            request=request,
            target=person,
            details={"before": {"is_active": True}, "after": {"is_active": False}, "why": reason},
        )
