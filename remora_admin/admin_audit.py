"""Django's admin writes every change to the audit chain, in the same transaction as the change.

`AuditedAdminMixin` goes in front of any `ModelAdmin`. Its event names follow the inventory's
(`hosts/changes.py`): `<model_name>.created|updated|deleted`, with `details` holding the changed
fields' values (`before` and `after`; `after` only for an addition, `before` only for a
deletion) and `"via": "admin"`. Many-to-many fields (a user's groups and permissions, a group's
permissions) and the rows of the admin's inlines (a static device's tokens) are part of the
object's state, so one save through the admin is one event, whatever it touched.

Secrets never reach the log: the fields named in `SECRET_FIELDS` and binary fields are written
as "[redacted]" (and "changed" on the side of a change); the comparison that finds a changed
secret uses a digest that is never written. `record()` then redacts, by name, whatever looks
like a password, token or secret on top of that.

Django's admin calls `save_model` then `save_related` inside one transaction (`changeform_view`,
and the change list's inline editing); the state before the change is read in `save_model`
(locking the row) and the event is written in `save_related`, once the related rows are saved.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.utils import unquote
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.db.models.deletion import Collector
from django.forms.models import _get_foreign_key
from django.http import HttpRequest

from hosts.changes import zone_of
from remora_admin.access.models import Zone
from remora_admin.audit.log import REDACTED, record

# Fields whose values are secrets, by model label, besides binary fields. (The log itself also
# redacts any detail named like password, token, secret, private or credential.)
SECRET_FIELDS: dict[str, frozenset[str]] = {
    "auth.user": frozenset({"password"}),
    "otp_totp.totpdevice": frozenset({"key"}),
    "otp_static.statictoken": frozenset({"token"}),
    "hosts.credential": frozenset({"encrypted_private_key"}),
    # Lockout records keep what a failed sign-in submitted, and a session's hash.
    "axes.accessattempt": frozenset({"get_data", "post_data"}),
    "axes.accesslog": frozenset({"session_hash"}),
}
CHANGED = "changed"
_BEFORE = "_admin_audit_before"


@dataclass(frozen=True)
class _Secret:
    """A secret field's value, held only as a digest so that a change can be seen."""

    digest: str


def is_secret(model: type[models.Model], field: models.Field) -> bool:
    return field.name in SECRET_FIELDS.get(model._meta.label_lower, ()) or isinstance(
        field, models.BinaryField
    )


def _field_value(obj: models.Model, field: models.Field) -> Any:
    value = field.value_from_object(obj)
    if not is_secret(type(obj), field):
        return value
    raw = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
    return _Secret(hashlib.sha256(raw).hexdigest())


def row_state(obj: models.Model) -> dict[str, Any]:
    """The object's own column values (foreign keys by id; secrets as digests)."""
    return {f.attname: _field_value(obj, f) for f in obj._meta.concrete_fields}


def _public(value: Any, secret_as: str = REDACTED) -> Any:
    """JSON-safe data for the log, with every secret replaced by `secret_as`."""
    if isinstance(value, _Secret):
        return secret_as
    if isinstance(value, dict):
        return {k: _public(v, secret_as) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_public(v, secret_as) for v in value]
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _has_secret(value: Any) -> bool:
    if isinstance(value, _Secret):
        return True
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_secret(v) for v in value)
    return False


def audit_zone(obj: models.Model) -> str:
    """The zone an object belongs to, when it belongs to one."""
    zone = zone_of(obj)
    if zone:
        return zone
    related = getattr(obj, "zone", None)
    return related.name if isinstance(related, Zone) else ""


def action_name(obj: models.Model, verb: str) -> str:
    """The inventory's naming (hosts/changes.py): `<model_name>.<verb>`."""
    return f"{obj._meta.model_name}.{verb}"


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Only the fields that changed; a changed secret reads "[redacted]" then "changed"."""
    changed = sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
    return {
        "before": {k: _public(before.get(k)) for k in changed},
        "after": {
            k: CHANGED if _has_secret(after.get(k)) else _public(after.get(k)) for k in changed
        },
    }


def _also_deleted(obj: models.Model) -> list[dict[str, Any]]:
    """What else deleting `obj` removes (its cascades), counted by model. (A list of entries,
    not a mapping by label: the log would redact a label such as otp_static.statictoken.)"""
    collector = Collector(using=router.db_for_write(type(obj)), origin=obj)
    collector.collect([obj])
    counts: dict[str, int] = {}
    for model, instances in collector.data.items():
        n = sum(1 for i in instances if not (type(i) is type(obj) and i.pk == obj.pk))
        if n and not model._meta.auto_created:
            counts[model._meta.label_lower] = counts.get(model._meta.label_lower, 0) + n
    for queryset in collector.fast_deletes:
        if queryset.model._meta.auto_created:
            continue
        n = queryset.count()
        if n:
            label = queryset.model._meta.label_lower
            counts[label] = counts.get(label, 0) + n
    return [{"model": label, "count": n} for label, n in sorted(counts.items())]


class ViewOnlyAdminMixin:
    """Put in front of a `ModelAdmin` whose model changes only elsewhere (audited there)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AuditedAdminMixin:
    """Put in front of a `ModelAdmin`: every add, change and delete writes one audit event."""

    def audit_state(self, obj: models.Model) -> dict[str, Any]:
        """The object's columns, its many-to-many fields and its inlines' rows."""
        state = row_state(obj)
        for field in obj._meta.many_to_many:
            related = getattr(obj, field.name).all() if obj.pk is not None else []
            state[field.name] = sorted(str(o) for o in related)
        for inline in self.inlines:
            fk = _get_foreign_key(type(obj), inline.model, fk_name=inline.fk_name)
            rows: Iterable[models.Model] = (
                inline.model._default_manager.filter(**{fk.name: obj}).order_by("pk")
                if obj.pk is not None
                else []
            )
            state[fk.remote_field.get_accessor_name()] = [row_state(row) for row in rows]
        return state

    def _audit_record(self, request, obj: models.Model, verb: str, details: dict) -> None:
        record(
            action_name(obj, verb),
            request=request,
            target=obj,
            zone=audit_zone(obj),
            details={**details, "via": "admin"},
        )

    def save_model(self, request, obj, form, change) -> None:
        with transaction.atomic(using=router.db_for_write(type(obj))):
            before = None
            if change and obj.pk is not None:
                manager = type(obj)._default_manager
                current = manager.select_for_update().filter(pk=obj.pk).first()
                before = self.audit_state(current) if current is not None else None
            setattr(obj, _BEFORE, before)
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        obj = form.instance
        with transaction.atomic(using=router.db_for_write(type(obj))):
            super().save_related(request, form, formsets, change)
            before = obj.__dict__.pop(_BEFORE, None)
            after = self.audit_state(obj)
            if not change:
                self._audit_record(request, obj, "created", {"after": _public(after)})
            elif before is None:  # the state before is unknown: say what it is now
                self._audit_record(request, obj, "updated", {"after": _public(after)})
            elif before != after:
                self._audit_record(request, obj, "updated", diff(before, after))

    def delete_model(self, request, obj) -> None:
        with transaction.atomic(using=router.db_for_write(type(obj))):
            details: dict[str, Any] = {"before": _public(self.audit_state(obj))}
            also = _also_deleted(obj)
            if also:
                details["also_deleted"] = also
            self._audit_record(request, obj, "deleted", details)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        model = queryset.model
        with transaction.atomic(using=router.db_for_write(model)):
            pks = list(queryset.values_list("pk", flat=True))
            for obj in model._default_manager.select_for_update().filter(pk__in=pks):
                self.delete_model(request, obj)


class AuditedPasswordChangeMixin:
    """For a user admin: its password form (/admin/auth/user/<id>/password/) is audited too."""

    def user_change_password(self, request: HttpRequest, id, form_url=""):
        if request.method != "POST":
            return super().user_change_password(request, id, form_url)
        with transaction.atomic(using=router.db_for_write(self.model)):
            user = self.get_object(request, unquote(id))
            manager = self.model._default_manager
            before = None
            if user is not None:
                row = manager.select_for_update().filter(pk=user.pk)
                before = row.values_list("password", flat=True).first()
            response = super().user_change_password(request, id, form_url)
            if before is not None:
                user = manager.get(pk=user.pk)
                if user.password != before:
                    after = CHANGED if user.has_usable_password() else "disabled"
                    record(
                        action_name(user, "updated"),
                        request=request,
                        target=user,
                        details={
                            "before": {"password": REDACTED},
                            "after": {"password": after},
                            "via": "admin",
                        },
                    )
        return response
