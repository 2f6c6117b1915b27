"""Who is calling: a personal token (`Authorization: Bearer rma_...`) or the browser's session
(the browsable API; CSRF holds). A read token may only read; what it may read or do beyond that
is the policy's question, asked by each view.

A token carries the second factor of the session that created it (tokens.py): the user object
answers `is_verified()` from the token, so the one policy decides restricted-zone changes the
same way for the API as for the pages.
"""

from typing import Any

from rest_framework import authentication, exceptions, permissions

from remora_admin.access import tokens
from remora_admin.access.models import ApiToken
from remora_admin.audit.log import client_address

KEYWORDS = (b"bearer", b"token")


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request) -> tuple[Any, ApiToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Give the token as one word: 'Authorization: Bearer <token>'."
            )
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("That is not a Remora API token.") from None
        try:
            token = tokens.authenticate(raw, client_address(request), request=request)
        except tokens.TokenInvalid as invalid:
            raise exceptions.AuthenticationFailed(str(invalid)) from None
        user = token.user
        user.is_verified = lambda: token.second_factor
        return user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="remora"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser's session, for the browsable API and the docs (CSRF is enforced)."""


def token_of(request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


class SignedInWithScope(permissions.BasePermission):
    """Signed in with an active account; a read-only token only reads. Everything else is the
    policy's, asked by the view."""

    message = "Sign in first: send a token as 'Authorization: Bearer <token>'."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        token = token_of(request)
        if (
            token is not None
            and token.scope != ApiToken.Scope.ACT
            and request.method not in permissions.SAFE_METHODS
        ):
            self.message = (
                "This token may only read. Create a token with the 'act' scope in the console "
                "(Access > API tokens) to launch, cancel or approve."
            )
            return False
        return True
