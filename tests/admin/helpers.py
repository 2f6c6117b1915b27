"""Reading and posting the admin's forms as a browser does, and reading the log."""

import json
from collections import defaultdict
from html.parser import HTMLParser
from typing import Any

from django.urls import reverse

from remora_admin.audit.models import AuditEvent
from tests.access.conftest import bernie  # noqa: F401 - a fixture

NEW_PASSWORD = "another-long-password-for-the-admin-test"

# --- Reading an admin form as a browser submits it ---------------------------------------------


class _FormReader(HTMLParser):
    """The values a browser would submit from the form with id `form_id`."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = defaultdict(list)
        self.names: set[str] = set()  # every named control, submitted or not
        self._select: dict[str, Any] | None = None
        self._option: dict[str, Any] | None = None
        self._textarea: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
            return
        if not self.inside:
            return
        name = a.get("name")
        if name and tag in {"input", "select", "textarea"}:
            self.names.add(name)
        if tag == "input" and name and "disabled" not in a:
            kind = (a.get("type") or "text").lower()
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    self.data[name].append(a.get("value") or "on")
            elif kind not in {"submit", "button", "image", "file", "reset"}:
                self.data[name].append(a.get("value") or "")
        elif tag == "select" and name and "disabled" not in a:
            self._select = {"name": name, "multiple": "multiple" in a, "options": []}
        elif tag == "option" and self._select is not None:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "text": ""}
        elif tag == "textarea" and name and "disabled" not in a:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._option is not None:
            self._option["text"] += data
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "option" and self._option is not None and self._select is not None:
            option = self._option
            value = option["value"] if option["value"] is not None else option["text"].strip()
            self._select["options"].append((value, option["selected"]))
            self._option = None
        elif tag == "select" and self._select is not None:
            options = self._select["options"]
            chosen = [v for v, selected in options if selected]
            if not chosen and not self._select["multiple"] and options:
                chosen = [options[0][0]]
            self.data[self._select["name"]].extend(chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self.data[name].append(text.removeprefix("\r\n").removeprefix("\n"))
            self._textarea = None


def read_form(html: str, form_id: str) -> tuple[dict[str, list[str]], set[str]]:
    reader = _FormReader(form_id)
    reader.feed(html)
    assert reader.names, f"no form #{form_id} on the page"
    return {k: v for k, v in reader.data.items() if v}, reader.names


def post_form(client, url: str, form_id: str, changes: dict[str, Any]):
    """GET `url`, take its form's values, apply `changes`, and POST it back."""
    page = client.get(url)
    assert page.status_code == 200, f"{url} answered {page.status_code}"
    data, _ = read_form(page.text, form_id)
    for name, value in changes.items():
        data[name] = value if isinstance(value, list) else [str(value)]
    data["_save"] = ["Save"]
    return client.post(url, data)


# --- Reading the log ---------------------------------------------------------------------------


def events_for(obj, action: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=action, target_type=obj._meta.label_lower, target_id=str(obj.pk)
        ).order_by("sequence")
    )


def one_event(obj, action: str, actor) -> AuditEvent:
    found = events_for(obj, action)
    assert len(found) == 1, f"expected one {action} event for {obj!r}, found {len(found)}"
    event = found[0]
    assert event.actor_id == actor.pk and event.actor_name == actor.username
    assert event.ip == "127.0.0.1"
    assert event.details.get("via") == "admin"
    return event


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _attempt(model, ip="10.0.0.9", **extra):
    """A lockout record (django-axes) for mallory."""
    where = {"ip_address": ip, "user_agent": "curl", "http_accept": "*/*", "path_info": "/"}
    return model.objects.create(username="mallory", **where, **extra)


def _no_secrets(event: AuditEvent, values: list[str]) -> None:
    text = json.dumps(event.details) + event.target_repr
    for value in values:
        assert value and value not in text, "a secret reached the audit log"
