"""The base views: dashboard, login and logout, the friendly 404."""

from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hosts.models import GrowthPhase, Host
from hosts.plan import next_phase_additions


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    hosts = Host.objects.select_related("zone").prefetch_related("services")
    current = GrowthPhase.objects.filter(is_current=True).first()
    context = {
        "hosts": hosts,
        "current_phase": current,
        "next_phase": next_phase_additions(current),
    }
    return render(request, "dashboard.html", context)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)
