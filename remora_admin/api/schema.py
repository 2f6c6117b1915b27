"""How the OpenAPI schema names our ways to authenticate (drf-spectacular extensions), and the
refusals every operation may answer with (RemoraSchema, the project's DEFAULT_SCHEMA_CLASS)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "remora_admin.api.auth.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal token from the console (Access > API tokens): "
            "'Authorization: Bearer rma_...'.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "remora_admin.api.auth.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


class ErrorSerializer(serializers.Serializer):
    """A refusal (errors.py): the reason in words and a code; a launch's per-host refusals, a
    plan's problems or a filter's per-field errors when there are some."""

    detail = serializers.CharField()
    code = serializers.CharField()
    refusals = serializers.ListField(child=serializers.DictField(), required=False)
    problems = serializers.ListField(child=serializers.CharField(), required=False)
    errors = serializers.DictField(required=False)


_ERRORS = {
    "400": OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="Bad input: the fields' errors ({field: [messages]}), or detail and code.",
    ),
    "401": OpenApiResponse(
        ErrorSerializer,
        description="No token, or one that cannot be used "
        "(unknown, expired, revoked, its owner deactivated): detail says why.",
    ),
    "403": OpenApiResponse(
        ErrorSerializer,
        description="The policy refused (code: its reason, "
        "e.g. no_role, needs_2fa), or a read-only token tried to act.",
    ),
    "404": OpenApiResponse(ErrorSerializer, description="No such thing, or not one you may see."),
}
_CHANGE_ERRORS = {
    "409": OpenApiResponse(
        ErrorSerializer,
        description="Refused by a precondition (the host "
        "is frozen, has no trusted key, the plan changed, ...).",
    ),
    "503": OpenApiResponse(ErrorSerializer, description="The job queue (Redis) is unavailable."),
}


class RemoraSchema(AutoSchema):
    """Every operation documents the refusals errors.py answers with, beside its success; only
    a GET pages (a launch on the list's address answers its runs and refusals, not a page)."""

    def _get_paginator(self):
        return super()._get_paginator() if self.method == "GET" else None

    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction=direction)
        if direction != "response":
            return bodies
        errors = dict(_ERRORS)
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            errors.update(_CHANGE_ERRORS)
        for code, response in errors.items():
            if code not in bodies:
                bodies[code] = self._get_response_for_code(response, code, direction=direction)
        return bodies
