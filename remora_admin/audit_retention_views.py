"""Retention of the audit log: archives of pruned events (auditors and superadmins read and
download them; a superadmin asks for one), included under /audit/ by audit_views."""

from django import forms
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling

from jobs import audit_checks
from jobs.queue import QueueUnavailable
from remora_admin.access.guards import require, requires
from remora_admin.access.policy import Action, can
from remora_admin.audit import retention
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditArchive, ChainHead
from remora_admin.audit_views import in_viewer_zone


class PruneForm(forms.Form):
    older_than_days = forms.IntegerField(
        min_value=1, max_value=retention.MAX_DAYS, label="Archive and prune events older than",
        help_text="days",
    )  # fmt: skip
    confirm = forms.BooleanField(
        label="I understand: the events are written to an archive file, checked, then removed "
        "from the database; the archive stays on the server for download."
    )


def _page(request: HttpRequest, form: PruneForm, status: int = 200) -> HttpResponse:
    archives = list(AuditArchive.objects.select_related("requested_by")[:50])
    days = form["older_than_days"].value() if form.is_bound else None
    preview = None
    if days and str(days).isdigit() and 1 <= int(days) <= retention.MAX_DAYS:
        preview = retention.plan(int(days))
    head = ChainHead.objects.filter(id=1).first()
    context = {
        "form": form,
        "archives": archives,
        "busy": any(
            a.status in (AuditArchive.Status.QUEUED, AuditArchive.Status.RUNNING) for a in archives
        ),  # fmt: skip
        "may_prune": can(request.user, Action.PRUNE_AUDIT),
        "preview": preview,
        "pruned_through": head.pruned_through if head else 0,
        "now": timezone.now(),
    }
    template = "audit/retention.html#archives" if request.htmx else "audit/retention.html"
    response = in_viewer_zone(request, template, context, status=status)
    if request.htmx and not context["busy"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_safe
@requires(Action.READ_AUDIT)
def retention_page(request: HttpRequest) -> HttpResponse:
    """The archives made so far, and (for a superadmin) the form to make one."""
    bound = "older_than_days" in request.GET
    return _page(request, PruneForm(request.GET, auto_id="prune_%s") if bound else PruneForm())


@require_POST
@requires(Action.READ_AUDIT)
def prune(request: HttpRequest) -> HttpResponse:
    require(request, Action.PRUNE_AUDIT)
    form = PruneForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        audit_checks.ask_prune(request.user, form.cleaned_data["older_than_days"], request)
    except retention.RetentionRefused as refused:
        form.add_error("older_than_days", str(refused))
        return _page(request, form, status=400)
    except QueueUnavailable as exc:
        form.add_error(None, str(exc))
        return _page(request, form, status=503)
    return redirect("audit:retention")


@require_GET
@requires(Action.READ_AUDIT)
def download(request: HttpRequest, pk: int) -> FileResponse:
    """An archive file, as written (its SHA-256 is in the chain's `audit.pruned` event)."""
    archive = get_object_or_404(AuditArchive, pk=pk, status=AuditArchive.Status.DONE)
    path = retention.archive_dir() / archive.filename
    if not archive.filename or not path.is_file():
        raise Http404("The archive file is no longer on this server.")
    record("audit.archive_downloaded", request=request, target=archive,
           details={"archive": archive.filename, "sha256": archive.sha256})  # fmt: skip
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=archive.filename)  # noqa: SIM115
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("retention/", retention_page, name="retention"),
    path("retention/prune/", prune, name="prune"),
    path("archives/<int:pk>/", download, name="archive"),
]
