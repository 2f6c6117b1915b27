"""Sign-in events come from inside django.contrib.auth (every login path: console, admin), so
they are recorded from its signals; every other audit event is recorded by an explicit call."""

import time

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from remora_admin.audit.log import record


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs) -> None:
    from .middleware import SIGNED_IN_AT

    request.session[SIGNED_IN_AT] = time.time()
    record("auth.login", request=request, actor=user)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        record("auth.logout", request=request, actor=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    tried = str(credentials.get("username", ""))[:150]
    record(
        "auth.login_failed",
        request=request,
        actor_name=tried or "(no user name)",
        details={"username": tried},
    )


@receiver(user_locked_out, dispatch_uid="audit_locked_out")
def audit_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    record(
        "auth.locked_out",
        request=request,
        actor_name=str(username or "")[:150] or "(no user name)",
        details={"username": username, "failures": settings.AXES_FAILURE_LIMIT},
    )
