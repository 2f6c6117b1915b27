"""The database admin for the inventory and zones. Every save and delete is audited, in its
transaction, by the one audited admin (admin_audit.py), which names its events as
hosts/changes.py does. Registered from remora_admin/admin.py: the admin is wiring, so hosts/
itself never imports the wiring layer."""

from django.contrib import admin

from hosts.models import GrowthPhase, Host, Placement, Service
from remora_admin.access.models import Grant, Zone

from .admin_audit import AuditedAdminMixin, ViewOnlyAdminMixin

# A host's pinned key and its trust are set only by the audited trust action
# (jobs/views_keys.py), never by hand here.
HOST_KEY_FIELDS = [
    "host_key",
    "host_key_fingerprint",
    "host_key_trusted_by",
    "host_key_trusted_at",
    "seen_host_key",
    "seen_host_key_fingerprint",
    "host_key_alert",
]


class AuditedAdmin(AuditedAdminMixin, admin.ModelAdmin):
    pass


@admin.register(Zone)
class ZoneAdmin(AuditedAdmin):
    list_display = ["name", "sensitivity", "controller_limit", "requires_approval"]


@admin.register(Host)
class HostAdmin(AuditedAdmin):
    list_display = ["name", "address", "zone", "ssh_user", "ssh_port", "active"]
    list_filter = ["zone", "active"]
    readonly_fields = HOST_KEY_FIELDS


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
class GrantAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    """Read-only here: grants change only through the console, which checks and audits them."""

    list_display = ["__str__", "expires_at", "revoked_at", "granted_by"]
    list_filter = ["role", "zone"]
