import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from remora_admin.audit.log import record

LAST_SEEN = "remora_last_seen"
SIGNED_IN_AT = "remora_signed_in_at"
# Refresh the idle clock at most this often, so most requests do not write the session.
_TOUCH_EVERY = 30


class SessionLifetimeMiddleware:
    """End sessions idle for too long, and every session some hours after sign-in."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            now = time.time()
            last = request.session.get(LAST_SEEN, now)
            started = request.session.get(SIGNED_IN_AT, now)
            idle_limit = settings.REMORA_SESSION_IDLE_MINUTES * 60
            max_age = settings.REMORA_SESSION_MAX_HOURS * 3600
            why = ""
            if now - last > idle_limit:
                why = f"idle for more than {settings.REMORA_SESSION_IDLE_MINUTES} minutes"
            elif now - started > max_age:
                why = f"signed in more than {settings.REMORA_SESSION_MAX_HOURS} hours ago"
            if why:
                record("auth.session_expired", request=request, actor=user, details={"why": why})
                logout(request)
                messages.info(request, f"You were signed out: {why}. Sign in again.")
                return redirect_to_login(request.get_full_path())
            if now - last > _TOUCH_EVERY or LAST_SEEN not in request.session:
                request.session[LAST_SEEN] = now
            request.session.setdefault(SIGNED_IN_AT, now)
        return self.get_response(request)


# Pages a person who must enrol may still reach: enrolment itself, signing out, and what the
# sign-in and password flows need on the way there.
ENROLMENT_OPEN = frozenset(
    {
        "access:two_factor",
        "access:confirm_password",
        "access:set_password",
        "login",
        "logout",
    }
)


class SecondFactorEnrolmentMiddleware:
    """People who hold any role in a restricted zone (a global role reaches every zone) enrol a
    second factor before they can use the console: every other page sends them to enrolment.
    Not a banner: a stolen password of theirs must not even read beamrider's hosts."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view, args, kwargs) -> HttpResponse | None:
        from .policy import reaches_restricted
        from .twofactor import has_second_factor

        user = request.user
        match = request.resolver_match
        if not user.is_authenticated or match is None or match.view_name in ENROLMENT_OPEN:
            return None
        if not reaches_restricted(user) or has_second_factor(user):
            return None
        query = urlencode({"required": "1", "next": request.get_full_path()})
        return redirect(f"{reverse('access:two_factor')}?{query}")
