from django.http import HttpRequest

from .models import Role
from .policy import Action, can, held_roles, is_verified
from .twofactor import has_second_factor


def access(request: HttpRequest) -> dict:
    """What the navigation may offer (the server re-checks every action anyway)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    held = held_roles(user)
    acts_in_restricted = any(
        h.role == Role.SUPERADMIN or (h.grant and h.grant.zone and h.grant.zone.is_restricted)
        for h in held
        if h.role != Role.VIEWER and h.role != Role.AUDITOR
    )
    banner = ""
    if acts_in_restricted and not is_verified(user):
        banner = "verify" if has_second_factor(user) else "enrol"
    return {
        "nav": {
            "access": can(user, Action.VIEW_ACCESS_REPORT),
            "audit": can(user, Action.READ_AUDIT),
            "credentials": can(user, Action.MANAGE_CREDENTIALS),
        },
        "two_factor_banner": banner,
    }
