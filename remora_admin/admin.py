"""The admin of the other apps' models, re-registered so that every change is audited.

This module loads after django.contrib.auth, django_otp, axes and django_rq have registered
their admins (remora_admin comes after them in INSTALLED_APPS), and replaces each with a
subclass that writes its changes to the audit chain (`AuditedAdminMixin`). The inventory's
admins (admin_inventory.py, registered on import here) use the same mixin.
"""

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.utils import timezone
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard

from remora_admin.audit.log import record

from . import admin_inventory  # noqa: F401 (registers the inventory's admins)
from .admin_audit import AuditedAdminMixin, AuditedPasswordChangeMixin, ViewOnlyAdminMixin


def _replace(model: type[models.Model], admin_class: type[admin.ModelAdmin]) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, admin_class)


# --- People and groups (groups carry grants) ---------------------------------------------------


class AuditedUserAdmin(AuditedPasswordChangeMixin, AuditedAdminMixin, UserAdmin):
    pass


class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    pass


_replace(get_user_model(), AuditedUserAdmin)
_replace(Group, AuditedGroupAdmin)


# --- Second-factor devices ---------------------------------------------------------------------
# An existing device's secret is never shown back (as with OTP_ADMIN_HIDE_SENSITIVE_DATA): the
# TOTP key, its QR code and a static device's tokens are seen only when the device is added.

_TOTP_SECRET_FIELDS = {"key", "qrcode_link"}


class AuditedTOTPDeviceAdmin(AuditedAdminMixin, TOTPDeviceAdmin):
    def get_list_display(self, request):
        return [f for f in super().get_list_display(request) if f != "qrcode_link"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        kept = []
        for name, options in fieldsets:
            fields = [f for f in options["fields"] if f not in _TOTP_SECRET_FIELDS]
            if fields:
                kept.append((name, {**options, "fields": fields}))
        return kept

    def config_view(self, request, pk):
        raise PermissionDenied

    def qrcode_view(self, request, pk):
        raise PermissionDenied


class AuditedStaticDeviceAdmin(AuditedAdminMixin, StaticDeviceAdmin):
    def get_inline_instances(self, request, obj=None):
        return [] if obj is not None else super().get_inline_instances(request, obj)


_replace(TOTPDevice, AuditedTOTPDeviceAdmin)
_replace(StaticDevice, AuditedStaticDeviceAdmin)


# --- Lockout records (django-axes) -------------------------------------------------------------
# Every field of these records is read-only, so they may be viewed and deleted (deleting an
# attempt lifts a lockout), never added or changed.


class _ReadOnlyRecords:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


if admin.site.is_registered(AccessAttempt):  # unless AXES_ENABLE_ADMIN is off

    class AuditedAccessAttemptAdmin(_ReadOnlyRecords, AuditedAdminMixin, AccessAttemptAdmin):
        actions = ["cleanup_expired_attempts"]

        @admin.action(description="Clean up expired attempts")
        def cleanup_expired_attempts(self, request, queryset):
            if not hasattr(request, "axes_attempt_time"):  # set only on sign-in requests
                request.axes_attempt_time = timezone.now()
            with transaction.atomic():
                count = self.handler.clean_expired_user_attempts(request=request)
                record(
                    "accessattempt.expired_cleaned",
                    request=request,
                    details={"deleted": count, "via": "admin"},
                )
            self.message_user(request, f"Cleaned up {count} expired access attempts.")

    class AuditedAccessLogAdmin(_ReadOnlyRecords, AuditedAdminMixin, AccessLogAdmin):
        pass

    class AuditedAccessFailureLogAdmin(_ReadOnlyRecords, AuditedAdminMixin, AccessFailureLogAdmin):
        pass

    _replace(AccessAttempt, AuditedAccessAttemptAdmin)
    _replace(AccessLog, AuditedAccessLogAdmin)
    _replace(AccessFailureLog, AuditedAccessFailureLogAdmin)


# --- django-rq's dashboard link ----------------------------------------------------------------
# A pseudo-model with no table: its change list is RQ's dashboard; it has nothing to add, change
# or delete, so those pages refuse rather than query a table that does not exist.

if admin.site.is_registered(Dashboard):  # unless RQ_SHOW_ADMIN_LINK is off

    class DashboardLinkAdmin(ViewOnlyAdminMixin, QueueAdmin):
        def add_view(self, request, form_url="", extra_context=None):
            raise PermissionDenied

        def change_view(self, request, object_id, form_url="", extra_context=None):
            raise PermissionDenied

        def delete_view(self, request, object_id, extra_context=None):
            raise PermissionDenied

        def history_view(self, request, object_id, extra_context=None):
            raise PermissionDenied

    _replace(Dashboard, DashboardLinkAdmin)
