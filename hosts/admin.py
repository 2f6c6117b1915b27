"""The database admin for the inventory. Every save and delete goes through the audited path."""

from django.contrib import admin
from django.db import transaction

from remora_admin.access.models import Grant, Zone

from .changes import delete_audited, save_audited
from .models import GrowthPhase, Host, Placement, Service


class AuditedAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change) -> None:
        save_audited(obj, request=request)

    def delete_model(self, request, obj) -> None:
        delete_audited(obj, request=request)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for obj in queryset:
                delete_audited(obj, request=request)


@admin.register(Zone)
class ZoneAdmin(AuditedAdmin):
    list_display = ["name", "sensitivity", "controller_limit", "requires_approval"]


@admin.register(Host)
class HostAdmin(AuditedAdmin):
    list_display = ["name", "address", "zone", "ssh_user", "ssh_port", "active"]
    list_filter = ["zone", "active"]


@admin.register(Service)
class ServiceAdmin(AuditedAdmin):
    list_display = ["kind", "host", "state"]
    list_filter = ["kind", "state", "host"]


class PlacementInline(admin.TabularInline):
    model = Placement
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "host", "settings"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GrowthPhase)
class GrowthPhaseAdmin(AuditedAdmin):
    list_display = ["number", "name", "is_current"]
    inlines = [PlacementInline]


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    """Read-only here: grants change only through the console, which checks and audits them."""

    list_display = ["__str__", "expires_at", "revoked_at", "granted_by"]
    list_filter = ["role", "zone"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
