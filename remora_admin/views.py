"""The base views: dashboard, login and logout, the friendly error pages."""

from urllib.parse import urlsplit

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from hosts.diagram import topology
from hosts.models import GrowthPhase, Host
from hosts.plan import next_phase_additions
from jobs import alerts
from remora_admin import lab_demo
from remora_admin.access.policy import Action, scope, zones_where
from remora_admin.access.report import zone_access
from remora_admin.access.twofactor import has_second_factor
from remora_admin.audit.log import record


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        self._note_expired_lockout(request.POST.get("username", ""))
        return super().post(request, *args, **kwargs)

    @staticmethod
    def _note_expired_lockout(username: str) -> None:
        """Record that a lockout ended (its cool-off passed) before the next attempt is judged."""
        cutoff = timezone.now() - settings.AXES_COOLOFF_TIME
        expired = AccessAttempt.objects.filter(
            username=username[:255],
            failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
            attempt_time__lte=cutoff,
        )
        if username and expired.exists():
            record(
                "auth.lockout_expired", actor_name=username[:150], details={"username": username}
            )
            expired.delete()

    def get_success_url(self) -> str:
        url = super().get_success_url()
        if has_second_factor(self.request.user):
            return f"{reverse('access:two_factor_verify')}?{urlencode({'next': url})}"
        return url


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    hosts = scope(Host.objects.select_related("zone"), request.user).prefetch_related("services")
    zones = list(zones_where(request.user, Action.VIEW))
    limit = settings.REMORA_RESTRICTED_CONTROLLER_LIMIT
    access = {za.zone.pk: za for za in zone_access(zones, default_limit=limit)}
    current = GrowthPhase.objects.filter(is_current=True).first()
    visible = {host.name for host in hosts}
    context = {
        "hosts": [(host, access.get(host.zone_id)) for host in hosts],
        "zone_access": list(access.values()),
        "current_phase": current,
        "diagram": topology(current, hosts=visible) if current and visible else None,
        "next_phase": next_phase_additions(current, visible),
        # In development only: the seed's machines are not this machine's to reach.
        "demo_unreachable": settings.DEBUG and lab_demo.demo_hosts_unreachable(),
        "alerts": list(alerts.visible(request.user).filter(cleared_at__isnull=True)[:6]),
    }
    return render(request, "dashboard.html", context)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    decision = getattr(exception, "decision", None)
    needs_2fa = decision is not None and decision.reason == "needs_2fa"
    context = {
        "message": str(exception) if exception and str(exception) else "You may not do that.",
        "needs_2fa": needs_2fa,
    }
    if needs_2fa and has_second_factor(request.user):
        # Back to this page after the code (for a form, to the page the form was on).
        back = request.get_full_path() if request.method == "GET" else ""
        referer = urlsplit(request.headers.get("Referer", ""))
        if not back and referer.netloc == request.get_host():
            back = referer.path
        query = urlencode({"next": back or reverse("dashboard")})
        context["verify_url"] = f"{reverse('access:two_factor_verify')}?{query}"
    return render(request, "403.html", context, status=403)
