"""Every refusal as JSON with the reason in words: `{"detail": ..., "code": ...}` (and the
per-host refusals of a launch, the per-field errors of a form). The policy's 403s keep the
policy's message; a launch refused by a precondition is a 409; no queue is a 503."""

from dataclasses import replace

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.response import Response
from rest_framework.views import exception_handler

from jobs.launch import LaunchRefused
from jobs.queue import QueueUnavailable
from remora_admin.access.models import ApiToken


def _refusals(exc: LaunchRefused) -> list[dict]:
    return [
        {
            "code": r.code,
            "message": r.message,
            "host": getattr(getattr(r, "target", None), "name", None),
        }
        for r in exc.refusals
    ]


# A token is no session to verify: say what to do instead.
API_TWO_FACTOR_HINT = (
    " With the API: use a token that may act in restricted zones, created in the console from "
    "a session verified with your second factor (it lives at most 12 hours)."
)


def _by_token(context) -> bool:
    request = context.get("request")
    return request is not None and isinstance(getattr(request, "auth", None), ApiToken)


SIGN_IN = (
    "Sign in first: send a personal token as 'Authorization: Bearer <token>' (make one in the "
    "console, Access > API tokens), or use the console's session."
)


def handler(exc, context):
    if _by_token(context) and "needs_2fa" in (
        getattr(exc, "reason", ""),
        getattr(getattr(exc, "decision", None), "reason", ""),
    ):
        exc = _for_tokens(exc)
    if isinstance(exc, LaunchRefused):
        body = {"detail": str(exc), "code": exc.reason or "refused", "refusals": _refusals(exc)}
        code = status.HTTP_403_FORBIDDEN if isinstance(exc, PermissionDenied) else 409
        return Response(body, status=code)
    if isinstance(exc, QueueUnavailable):
        return Response({"detail": str(exc), "code": "queue_unavailable"}, status=503)
    if isinstance(exc, PermissionDenied) and not isinstance(exc, LaunchRefused):
        decision = getattr(exc, "decision", None)
        body = {
            "detail": str(exc) or "You may not do this.",
            "code": getattr(decision, "reason", "") or "permission_denied",
        }
        return Response(body, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, Http404):
        return Response({"detail": str(exc) or "Not found.", "code": "not_found"}, status=404)
    if isinstance(exc, NotAuthenticated):
        header = getattr(exc, "auth_header", None)
        exc = NotAuthenticated(SIGN_IN)
        exc.auth_header = header
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data["code"] = getattr(detail, "code", "error")
    return response


@csrf_exempt  # it changes nothing (as DRF's views, the API answers JSON to any method)
def no_such_address(request: HttpRequest, path: str = "") -> JsonResponse:
    """An /api/ address that names nothing (or a malformed id): the API's JSON 404, not the
    console's HTML page. Says nothing about any object, so it asks no policy."""
    body = {"detail": "There is no such API address: see /api/docs/.", "code": "not_found"}
    return JsonResponse(body, status=404)


def _for_tokens(exc):
    """The same refusal, its words ending with what a token's holder can do."""
    if isinstance(exc, LaunchRefused):
        exc.args = (str(exc) + API_TWO_FACTOR_HINT,)
        exc.refusals = [
            replace(r, message=r.message + API_TWO_FACTOR_HINT) if r.code == "needs_2fa" else r
            for r in exc.refusals
        ]
        return exc
    decision = getattr(exc, "decision", None)
    changed = PermissionDenied(str(exc) + API_TWO_FACTOR_HINT)
    changed.decision = decision
    return changed
