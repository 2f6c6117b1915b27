from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse


class SuperuserAdminSite(admin.AdminSite):
    """Django's admin, for superusers only (staff status alone is not enough), and only in a
    session verified with the second factor: the admin can change restricted zones' hosts."""

    site_header = "Remora Admin — database admin"
    site_title = "Remora Admin"

    def has_permission(self, request: HttpRequest) -> bool:
        from remora_admin.access.policy import is_verified  # not at import: apps load later

        user = request.user
        return user.is_active and user.is_superuser and is_verified(user)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """The console's own sign-in, then its second-factor step, lead to the admin."""
        from remora_admin.access.policy import is_verified
        from remora_admin.access.twofactor import has_second_factor

        back = request.GET.get("next") or reverse("admin:index")
        user = request.user
        if not user.is_authenticated:
            return redirect(f"{reverse('login')}?{urlencode({'next': back})}")
        if user.is_superuser and not is_verified(user):
            step = "access:two_factor_verify" if has_second_factor(user) else "access:two_factor"
            return redirect(f"{reverse(step)}?{urlencode({'next': back})}")
        return super().login(request, extra_context)


class RemoraAdminSiteConfig(AdminConfig):
    default_site = "remora_admin.admin_site.SuperuserAdminSite"
