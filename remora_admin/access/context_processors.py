from django.http import HttpRequest

from .policy import Action, can, is_verified, reaches_restricted
from .twofactor import has_second_factor


def access(request: HttpRequest) -> dict:
    """What the navigation may offer: only what the policy allows (the server re-checks every
    action anyway), and whether this session still needs its second factor."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    banner = ""
    if reaches_restricted(user) and not is_verified(user):
        banner = "verify" if has_second_factor(user) else "enrol"
    return {
        "nav": {
            "access": can(user, Action.VIEW_ACCESS_REPORT),
            "audit": can(user, Action.READ_ZONE_AUDIT),
            "credentials": can(user, Action.MANAGE_CREDENTIALS),
            "people": can(user, Action.VIEW_PEOPLE),
            "workers": can(user, Action.READ_ALL_RUNS),
            "grant": can(user, Action.GRANT_IN_ZONE),
            "admin": user.is_superuser and is_verified(user),
        },
        "two_factor_banner": banner,
    }
