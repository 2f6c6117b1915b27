import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

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
