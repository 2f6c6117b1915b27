"""How views ask the policy: the first line of every view calls one of these.

Objects the user may not see are a 404 (their existence is not confirmed); actions the user may
not take on what they can see are a 403 with the reason in words. Every denial is audited.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from remora_admin.audit.log import record

from .policy import Action, Decision, decide


class Denied(PermissionDenied):
    def __init__(self, decision: Decision):
        super().__init__(decision.message)
        self.decision = decision


def _audit_denial(
    request: HttpRequest, action: Action, target: Any, decision: Decision, hidden: bool
) -> None:
    """Every refusal is an `access.denied` event with its target: the object asked about, or
    the page when the question was about no object."""
    is_row = isinstance(target, Model)
    record(
        "access.denied",
        request=request,
        target=target if is_row else None,
        target_type="" if is_row else "page",
        target_repr="" if is_row else request.path[:200],
        details={
            "action": str(action),
            "reason": "not visible" if hidden else decision.reason,
            "message": decision.message,
            "method": request.method,
            "path": request.path[:300],
        },
    )


def require(request: HttpRequest, action: Action, target: Any = None) -> None:
    """Raise a 403 (audited, with the reason) unless the user may do `action` to `target`."""
    decision = decide(request.user, action, target)
    if not decision.allowed:
        _audit_denial(request, action, target, decision, hidden=False)
        raise Denied(decision)


def get_for_user(
    request: HttpRequest,
    queryset: QuerySet,
    action: Action = Action.VIEW,
    **lookup: Any,
) -> Any:
    """Fetch one object the user may see, else 404; then check `action` on it, else 403."""
    obj = queryset.filter(**lookup).first()
    missing = (
        f"No such {queryset.model._meta.verbose_name}: {', '.join(map(str, lookup.values()))}."
    )
    if obj is None:
        raise Http404(missing)
    seen = decide(request.user, Action.VIEW, obj)
    if not seen.allowed:
        _audit_denial(request, action, obj, seen, hidden=True)
        raise Http404(missing)  # the same words as for nothing at all
    if action != Action.VIEW:
        require(request, action, obj)
    return obj


def requires(action: Action) -> Callable:
    """For views of global scope (the audit log, people, access): sign in, then the policy."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            require(request, action)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
