from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest


class SuperuserAdminSite(admin.AdminSite):
    """Django's admin, for superusers only (staff status alone is not enough)."""

    site_header = "Remora Admin — database admin"
    site_title = "Remora Admin"

    def has_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser


class RemoraAdminSiteConfig(AdminConfig):
    default_site = "remora_admin.admin_site.SuperuserAdminSite"
