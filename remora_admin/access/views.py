from django import forms
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from remora_admin.audit.log import record

from . import twofactor
from .forms import (
    DeactivateForm,
    ExpiryForm,
    GrantForm,
    PasswordConfirmForm,
    PersonForm,
    RevokeForm,
    TokenForm,
)
from .grants import (
    AccessChangeRefused,
    change_expiry,
    create_grant,
    create_person,
    deactivate_person,
    revoke_grant,
    set_password_link,
)
from .guards import Denied, get_for_user, requires
from .models import Grant, Zone
from .policy import (
    Action,
    Decision,
    can,
    decide_deactivate,
    decide_grant,
    holds_globally,
    zones_where,
)
from .sudo import start_sudo_mode, sudo_required

User = get_user_model()


def _forbid_unverified(refusal: AccessChangeRefused) -> None:
    """A change refused for want of a verified session is a 403 that says how to verify, like
    every other such refusal (the attempt is already audited)."""
    if refusal.reason == "needs_2fa":
        raise Denied(Decision(False, refusal.reason, str(refusal)))


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def _zone_ids_seen(request: HttpRequest) -> set[int] | None:
    """The zones whose people the viewer sees in full; None for global people-viewers."""
    if holds_globally(request.user, Action.VIEW_PEOPLE):
        return None
    return set(zones_where(request.user, Action.VIEW_PEOPLE).values_list("pk", flat=True))


def _shows_in_full(person, grants, seen: set[int] | None) -> bool:
    """Other zones' people are shown by name only: a zone admin sees e-mail, second-factor
    state and last sign-in of the people who hold something in the zones they administer."""
    if seen is None:
        return True
    return any(g.zone_id in seen for g in grants)


@requires(Action.VIEW_PEOPLE)
def people(request: HttpRequest) -> HttpResponse:
    seen = _zone_ids_seen(request)
    persons = User.objects.order_by("-is_active", "username").prefetch_related("grants__zone")
    rows = []
    for person in persons:
        active = [g for g in person.grants.all() if g.is_active()]
        full = _shows_in_full(person, active, seen)
        grants = [g for g in active if seen is None or g.zone_id in seen]
        rows.append({"person": person, "grants": grants, "full": full})
    filtered_to = None
    if seen is not None:
        filtered_to = sorted(z.name for z in Zone.objects.filter(pk__in=seen))
    context = {
        "rows": rows,
        "filtered_to": filtered_to,
        "may_add": can(request.user, Action.MANAGE_PEOPLE),
        "may_grant": can(request.user, Action.GRANT_IN_ZONE),
    }
    return render(request, "access/people.html", context)


@requires(Action.MANAGE_PEOPLE)
@never_cache
def person_new(request: HttpRequest) -> HttpResponse:
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            person = create_person(request, **form.cleaned_data)
        except AccessChangeRefused as refusal:
            _forbid_unverified(refusal)
            form.add_error(None, str(refusal))
        else:
            # The link is shown this once and stored nowhere (it is as good as a password).
            link = set_password_link(request, person)
            return render(request, "access/person_created.html", {"person": person, "link": link})
    return render(request, "access/person_form.html", {"form": form})


@requires(Action.VIEW_PEOPLE)
def person_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(User, pk=pk)
    seen = _zone_ids_seen(request)
    every = list(
        Grant.objects.filter(user=person).select_related("zone", "granted_by", "revoked_by")
    )
    grants = [g for g in every if seen is None or g.zone_id in seen]
    full = _shows_in_full(person, [g for g in every if g.is_active()], seen)
    context = {
        "person": person,
        "full": full,
        "grants": grants,
        "has_2fa": twofactor.has_second_factor(person) if full else None,
        "may_grant": can(request.user, Action.GRANT_IN_ZONE),
        "may_deactivate": person.is_active and can_deactivate(request.user, person),
        "may_revoke": {g.pk for g in grants if decide_grant(request.user, g.role, g.zone)},
        "deactivate_form": DeactivateForm(),
    }
    return render(request, "access/person_detail.html", context)


def can_deactivate(actor, person) -> bool:
    return decide_deactivate(actor, person).allowed


@require_POST
@requires(Action.MANAGE_PEOPLE)
@sudo_required
def person_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(User, pk=pk)
    form = DeactivateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason for deactivating the account.")
    else:
        try:
            deactivate_person(request, person, form.cleaned_data["reason"])
        except AccessChangeRefused as refusal:
            _forbid_unverified(refusal)
            messages.error(request, str(refusal))
        else:
            messages.success(request, f"{person.username} is deactivated; their access ended now.")
    return redirect("access:person", pk=pk)


@requires(Action.GRANT_IN_ZONE)
@sudo_required
def grant_new(request: HttpRequest) -> HttpResponse:
    initial = {"user": request.GET.get("user", ""), "zone": request.GET.get("zone", "")}
    form = GrantForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                grant = create_grant(
                    request,
                    user=data["user"],
                    group=data["group"],
                    role=data["role"],
                    zone=data["zone"],
                    reason=data["reason"],
                    expires_at=data["expires_at"],
                )
            except AccessChangeRefused as refusal:
                _forbid_unverified(refusal)
                form.add_error(None, str(refusal))
            else:
                messages.success(request, f"Granted: {grant}.")
                return redirect("access_report")
        else:
            record(
                "grant.refused",
                request=request,
                details={"reason": "invalid form", "errors": form.errors.get_json_data()},
            )
    return render(request, "access/grant_form.html", {"form": form})


def _change_grant(request: HttpRequest, pk: int, form: forms.Form, invalid: str, change, done):
    """Apply `change(request, grant, value)` with the form's one value; report in words."""
    grant = get_for_user(request, Grant.objects.select_related("zone", "user"), pk=pk)
    try:
        if not form.is_valid():
            raise AccessChangeRefused(invalid)
        change(request, grant, next(iter(form.cleaned_data.values())))
    except AccessChangeRefused as refusal:
        _forbid_unverified(refusal)
        messages.error(request, str(refusal))
    else:
        messages.success(request, done.format(grant=grant))
    return redirect(_safe_next(request, reverse("access_report")))


@require_POST
@requires(Action.GRANT_IN_ZONE)
@sudo_required
def grant_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    form = RevokeForm(request.POST)
    invalid = "Give a reason for revoking the grant."
    return _change_grant(request, pk, form, invalid, revoke_grant, "Revoked: {grant}.")


@require_POST
@requires(Action.GRANT_IN_ZONE)
@sudo_required
def grant_expiry(request: HttpRequest, pk: int) -> HttpResponse:
    form = ExpiryForm(request.POST)
    invalid = "Enter the new expiry as a date and time."
    done = "Changed the expiry of {grant}."
    return _change_grant(request, pk, form, invalid, change_expiry, done)


@login_required
def confirm_password(request: HttpRequest) -> HttpResponse:
    form = PasswordConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = authenticate(
            request, username=request.user.get_username(), password=form.cleaned_data["password"]
        )
        if user is not None and user.pk == request.user.pk:
            start_sudo_mode(request)
            record("auth.reauthenticated", request=request)
            return redirect(_safe_next(request, reverse("dashboard")))
        form.add_error("password", "That password is not right.")
        record("auth.reauthentication_failed", request=request)
    return render(
        request, "access/confirm_password.html", {"form": form, "next": _safe_next(request, "")}
    )


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The one-time link a new person uses to choose their password."""

    template_name = "access/set_password.html"
    success_url = reverse_lazy("login")
    reset_url_token = "choose"  # noqa: S105 (a URL segment, not a secret)

    def form_valid(self, form):
        response = super().form_valid(form)
        record("user.password_set", request=self.request, actor=form.user)
        messages.success(self.request, "Your password is set. Sign in with it now.")
        return response


def _verify_first(request: HttpRequest) -> HttpResponse | None:
    """Changing a second factor needs the current one: a password alone is not enough."""
    if twofactor.has_second_factor(request.user) and not request.user.is_verified():
        messages.info(request, "Enter a code from your current authenticator first.")
        query = urlencode({"next": reverse("access:two_factor")})
        return redirect(f"{reverse('access:two_factor_verify')}?{query}")
    return None


@login_required
@never_cache
def two_factor(request: HttpRequest) -> HttpResponse:
    """Set up or review the second factor. Looking changes nothing: a new authenticator secret
    is made only when the person asks for one (POST "start"), then confirmed with a code."""
    enrolled = twofactor.has_second_factor(request.user)
    replacing = bool(request.GET.get("replace") or request.POST.get("replace"))
    if (request.method == "POST" or replacing) and (refusal := _verify_first(request)):
        return refusal
    form = TokenForm(request.POST if "token" in request.POST else None)
    device = None
    if request.method == "POST" and "start" in request.POST:
        with transaction.atomic():
            device = twofactor.pending_device(request.user)
            record("auth.2fa_secret_shown", request=request, details={"device": device.name})
    elif form.is_bound:
        device = twofactor.pending_device(request.user, create=False)
        if form.is_valid():
            codes = twofactor.confirm_enrolment(request, form.cleaned_data["token"])
            if codes is not None:
                return render(request, "access/recovery_codes.html", {"codes": codes})
            form.add_error(
                "token",
                "That code is not right. Check the clock of your phone and try the newest code.",
            )
    context = {
        "enrolled": enrolled,
        "replacing": replacing,
        "form": form,
        "next": _safe_next(request, ""),
        "required": request.GET.get("required") == "1" or request.POST.get("required") == "1",
    }
    if device is not None:
        context.update({"qr": twofactor.qr_svg(device), "secret": twofactor.secret_base32(device)})
    return render(request, "access/two_factor.html", context)


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    if not twofactor.has_second_factor(request.user):
        return redirect("access:two_factor")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if twofactor.verify(request, form.cleaned_data["token"]):
            return redirect(_safe_next(request, reverse("dashboard")))
        form.add_error("token", "That code is not right, or was already used.")
    return render(
        request, "access/two_factor_verify.html", {"form": form, "next": _safe_next(request, "")}
    )


@require_POST
@never_cache
@login_required
@sudo_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    if not twofactor.has_second_factor(request.user):
        return redirect("access:two_factor")
    if refusal := _verify_first(request):
        return refusal
    with transaction.atomic():
        codes = twofactor.new_recovery_codes(request.user)
        record("auth.2fa_recovery_codes_replaced", request=request)
    return render(request, "access/recovery_codes.html", {"codes": codes})
