"""SSH credentials: generated or imported, encrypted at rest, shown only by their public half."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from remora_admin.access.guards import get_for_user, require, requires
from remora_admin.access.policy import Action, scope, zones_where
from remora_admin.audit.log import record

from .changes import save_audited
from .credentials import CredentialError, encrypt, fingerprint, generate_ed25519, parse_private_key
from .forms import CredentialForm, HostForm
from .models import Credential, Host


@requires(Action.MANAGE_CREDENTIALS)
def credential_list(request: HttpRequest) -> HttpResponse:
    credentials = scope(
        Credential.objects.select_related("zone", "created_by"),
        request.user,
        Action.MANAGE_CREDENTIALS,
    ).prefetch_related("hosts")
    return render(request, "hosts/credential_list.html", {"credentials": credentials})


@never_cache  # the page may carry a pasted private key: never stored by a browser or proxy
@requires(Action.MANAGE_CREDENTIALS)
def credential_new(request: HttpRequest) -> HttpResponse:
    zones = zones_where(request.user, Action.MANAGE_CREDENTIALS)
    form = CredentialForm(request.POST or None, zones=zones)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        require(request, Action.MANAGE_CREDENTIALS, data["zone"])
        try:
            text = data["private_key"] or generate_ed25519()
            private, kind, public = parse_private_key(text)
            with transaction.atomic():
                credential = Credential.objects.create(
                    name=data["name"],
                    zone=data["zone"],
                    key_type=kind,
                    public_key=public,
                    fingerprint=fingerprint(public),
                    encrypted_private_key=encrypt(private),
                    created_by=request.user,
                )
                record(
                    "credential.created",
                    request=request,
                    target=credential,
                    zone=credential.zone.name,
                    details={
                        "key_type": kind,
                        "fingerprint": credential.fingerprint,
                        "generated": not data["private_key"],
                    },
                )
        except CredentialError as exc:
            form.add_error("private_key", str(exc))
        except IntegrityError:
            form.add_error("name", "A credential with this name exists in that zone.")
        else:
            messages.success(
                request,
                f"Credential {credential.name} saved. Install its public key on the hosts "
                "(~/.ssh/authorized_keys of the SSH user).",
            )
            return redirect("hosts:credentials")
    return render(request, "hosts/credential_form.html", {"form": form})


@login_required
def host_edit(request: HttpRequest, name: str) -> HttpResponse:
    host = get_for_user(
        request, Host.objects.select_related("zone"), Action.EDIT_INVENTORY, name=name
    )
    form = HostForm(request.POST or None, instance=host)
    if request.method == "POST" and form.is_valid():
        save_audited(form.instance, request=request)
        messages.success(request, f"{host.name} saved.")
        return redirect(host)
    return render(request, "hosts/host_form.html", {"host": host, "form": form})
