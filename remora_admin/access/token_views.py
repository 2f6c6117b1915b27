"""Access > API tokens: your personal tokens for the API and the `remora` command line. A new
token is shown once, on the page that created it; the list shows what tells them apart (name,
first characters, scope, expiry, last use) and revokes."""

import secrets
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from . import tokens
from .models import ApiToken
from .policy import is_verified, reaches_restricted
from .sudo import sudo_required

USED_FORMS = "remora_token_forms_used"  # the forms that made their token (a reload re-posts)
LIFETIMES = {
    "12h": ("12 hours", timedelta(hours=12)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
    "90d": ("90 days", timedelta(days=90)),
    "365d": ("1 year", timedelta(days=365)),
}


class NewTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What it is for, e.g. 'laptop CLI'.")
    scope = forms.ChoiceField(
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        widget=forms.RadioSelect,
        help_text="Read only: look at hosts, runs and the audit log. Read and act: also launch, "
        "cancel, approve, apply plans, as far as your roles allow.",
    )
    lifetime = forms.ChoiceField(
        choices=[(k, words) for k, (words, _) in LIFETIMES.items()],
        initial="30d",
        label="Expires after",
    )
    form_id = forms.CharField(widget=forms.HiddenInput, max_length=40)
    restricted = forms.BooleanField(
        required=False,
        label="May act in restricted zones",
        help_text="Only from a session verified with your second factor; such a token lives "
        "at most 12 hours.",
    )


def _page(request: HttpRequest, form: NewTokenForm, status: int = 200, **extra) -> HttpResponse:
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user=request.user),
        "reaches_restricted": reaches_restricted(request.user),
        "verified": is_verified(request.user),
        **extra,
    }
    return render(request, "access/tokens.html", context, status=status)


@require_safe
@never_cache
@login_required
@sudo_required  # the form below makes tokens: ask for the password before, not after
def token_list(request: HttpRequest) -> HttpResponse:
    return _page(request, NewTokenForm(initial={"form_id": secrets.token_urlsafe(16)}))


def _already_used(request: HttpRequest, form_id: str) -> bool:
    return form_id in request.session.get(USED_FORMS, [])


def _note_used(request: HttpRequest, form_id: str) -> None:
    request.session[USED_FORMS] = [*request.session.get(USED_FORMS, []), form_id][-20:]


@require_POST
@never_cache
@login_required
@sudo_required
def token_new(request: HttpRequest) -> HttpResponse:
    """Make the token and show it in this answer only: its secret is stored nowhere (not in the
    session either). A reload posts the same form again: it makes no second token."""
    form = NewTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    f = form.cleaned_data
    if _already_used(request, f["form_id"]):
        messages.info(request, "That form already made its token, shown once. If you did not "
                      "copy it, revoke it and make a new one.")  # fmt: skip
        return redirect("access:tokens")
    try:
        token, raw = tokens.create(
            request.user,
            name=f["name"],
            scope=f["scope"],
            lifetime=LIFETIMES[f["lifetime"]][1],
            restricted=f["restricted"],
            request=request,
        )
    except tokens.TokenRefused as refused:
        form.add_error(None, str(refused))
        return _page(request, form, status=400)
    _note_used(request, f["form_id"])
    fresh = NewTokenForm(initial={"form_id": secrets.token_urlsafe(16)})
    return _page(request, fresh, created=token, secret=raw)


@require_POST
@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = tokens.revocable(request, pk)
    try:
        tokens.revoke(request.user, token, request=request)
    except tokens.TokenRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Token {token.name} ({token.prefix}…) revoked.")
    return redirect("access:tokens")
