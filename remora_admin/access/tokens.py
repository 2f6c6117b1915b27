"""Personal API tokens: created in the console, shown once, stored as a digest, with a required
expiry and a scope; used by the API (`remora_admin/api/auth.py`) and the `remora` CLI.

The second factor holds for tokens too: a token may act in a restricted zone only when it was
created from a session verified with the second factor, and then it lives at most
REMORA_TOKEN_RESTRICTED_HOURS (12). Any other token is an unverified session to the policy.
Creation, use from a new address and revocation are audited; the token itself never is.
"""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from remora_admin.audit.log import record

from .guards import require
from .models import ApiToken
from .policy import Action, decide, is_verified, reaches_restricted

PREFIX = "rma_"
SHOWN = 12  # characters of the token kept to tell tokens apart ("rma_" and 8 more)
KEEP_ADDRESSES = 20
TOUCH_EVERY = timedelta(seconds=60)  # last-used time is written at most this often


class TokenRefused(Exception):
    """A token could not be created or revoked; the message says why, in words."""


class TokenInvalid(Exception):
    """The token presented cannot be used; the message says why, in words."""


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def max_lifetime(restricted: bool) -> timedelta:
    if restricted:
        return timedelta(hours=settings.REMORA_TOKEN_RESTRICTED_HOURS)
    return timedelta(days=settings.REMORA_TOKEN_MAX_DAYS)


def create(
    user: Any,
    *,
    name: str,
    scope: str,
    lifetime: timedelta,
    restricted: bool = False,
    request: HttpRequest | None = None,
) -> tuple[ApiToken, str]:
    """Make a token for `user` (who must be the one signed in) and return it with its secret,
    which is never stored nor shown again."""
    name = name.strip()
    if not name:
        raise TokenRefused("Give the token a name, to tell it apart later (e.g. 'laptop CLI').")
    if scope not in ApiToken.Scope.values:
        raise TokenRefused("The scope must be 'read' or 'act'.")
    if lifetime <= timedelta(0):
        raise TokenRefused("A token needs an expiry in the future.")
    longest = max_lifetime(restricted)
    if lifetime > longest:
        if restricted:
            raise TokenRefused(
                f"A token that may act in restricted zones lives at most "
                f"{settings.REMORA_TOKEN_RESTRICTED_HOURS} hours."
            )
        raise TokenRefused(f"A token lives at most {settings.REMORA_TOKEN_MAX_DAYS} days.")
    if restricted:
        if scope != ApiToken.Scope.ACT:
            raise TokenRefused("Only a token that may act needs the restricted zones' right.")
        if not reaches_restricted(user):
            raise TokenRefused("You hold no role in a restricted zone: there is nothing to allow.")
        if not is_verified(user):
            raise TokenRefused(
                "A token that may act in restricted zones is created only from a session "
                "verified with your second factor: verify on the Two-factor page, then try again."
            )
    raw = PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:100],
            prefix=raw[:SHOWN],
            digest=digest(raw),
            scope=scope,
            second_factor=restricted,
            created_at=now,
            expires_at=now + lifetime,
        )
        record(
            "api_token.created",
            request=request,
            actor=user,
            target=token,
            details={
                "name": token.name,
                "prefix": token.prefix,
                "scope": scope,
                "second_factor": restricted,
                "expires_at": token.expires_at.isoformat(),
            },
        )
    return token, raw


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def authenticate(raw: str, address: str | None, request: HttpRequest | None = None) -> ApiToken:
    """The live token `raw` is, with its owner; notes when and where it was used (audited the
    first time it comes from an address). Raises TokenInvalid with the reason."""
    if not raw.startswith(PREFIX):
        raise TokenInvalid("That is not a Remora API token (they start with 'rma_').")
    token = ApiToken.objects.select_related("user").filter(digest=digest(raw)).first()
    if token is None:
        raise TokenInvalid("This token is not known: it was mistyped, or its owner deleted it.")
    if token.revoked_at is not None:
        raise TokenInvalid(f"This token was revoked on {_when(token.revoked_at)}.")
    now = timezone.now()
    if token.expires_at <= now:
        raise TokenInvalid(
            f"This token expired on {_when(token.expires_at)}: create a new one in the console "
            "(Access > API tokens) and `remora login` again."
        )
    if not token.user.is_active:
        raise TokenInvalid("The account this token belongs to is deactivated.")
    new_address = address is not None and address not in token.addresses
    stale = token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY
    if new_address or stale or address != token.last_used_ip:
        with transaction.atomic():
            if new_address:
                token.addresses = [*token.addresses, address][-KEEP_ADDRESSES:]
                record(
                    "api_token.new_address",
                    request=request,
                    actor=token.user,
                    target=token,
                    details={"prefix": token.prefix, "address": address},
                )
            ApiToken.objects.filter(pk=token.pk).update(
                last_used_at=now, last_used_ip=address, addresses=token.addresses
            )
        token.last_used_at, token.last_used_ip = now, address
    return token


def revocable(request: Any, pk: int) -> ApiToken:
    """The token `pk` if the one asking may revoke it: their own, or anyone's for a superadmin
    (whose session must be verified: else a 403 that says so). Anyone else's is a 404: its
    existence is not confirmed."""
    token = ApiToken.objects.select_related("user").filter(pk=pk).first()
    if token is not None and token.user_id != request.user.pk:
        decision = decide(request.user, Action.MANAGE_ACCESS)
        if decision.reason == "needs_2fa":
            require(request, Action.MANAGE_ACCESS)  # audited, a 403 with the reason
    if token is None or not may_revoke(request.user, token):
        raise Http404("No such token.")
    return token


def may_revoke(actor: Any, token: ApiToken) -> bool:
    """One's own tokens, or anyone's for whoever manages all access."""
    return token.user_id == actor.pk or decide(actor, Action.MANAGE_ACCESS).allowed


def revoke(actor: Any, token: ApiToken, *, request: HttpRequest | None = None) -> None:
    if not may_revoke(actor, token):
        raise TokenRefused("Only its owner or a superadmin revokes a token.")
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().get(pk=token.pk)
        if locked.revoked_at is not None:
            raise TokenRefused("This token is already revoked.")
        locked.revoked_at = timezone.now()
        locked.revoked_by = actor
        locked.save(update_fields=["revoked_at", "revoked_by"])
        record(
            "api_token.revoked",
            request=request,
            actor=actor,
            target=locked,
            details={"prefix": locked.prefix, "owner": locked.user.get_username()},
        )
    token.revoked_at, token.revoked_by = locked.revoked_at, actor
