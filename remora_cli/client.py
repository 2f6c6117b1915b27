"""The HTTP side: one request to the API, its JSON back, and every way it can go wrong turned
into an `ApiError` whose message is one line in words (never the token)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from . import __version__

TIMEOUT = 30.0  # seconds for an ordinary request; long polls add their own wait


class ApiError(Exception):
    """A request failed; `str()` is the one line to show. `status` is the HTTP status (None when
    no answer came), `body` the JSON error document when there was one."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the token to wherever it points: refuse it, and say where to."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(f"{url} is not a console URL: give one like https://remora.example.org")
    if parts.path.endswith("/api"):
        url = url[: -len("/api")]
    return url


def _first_line(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    line = text.splitlines()[0].strip() if text else "(empty)"
    return line[:200]


def _field_errors(errors: Any, prefix: str = "") -> list[str]:
    """DRF's per-field errors ({"params": {"lines": ["..."]}}) as "params.lines: ..." lines."""
    found = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            if key in ("detail", "code") and not prefix:
                continue
            found += _field_errors(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
    elif isinstance(errors, list):
        for item in errors:
            found += _field_errors(item, prefix)
    elif errors not in (None, ""):
        found.append(f"{prefix}: {errors}" if prefix else str(errors))
    return found


def explain(status: int, body: Any) -> str:
    """The server's refusal in words: its `detail`, each refused host of a launch, each problem
    of a plan, each invalid field."""
    if not isinstance(body, dict):
        return f"the server answered {status}"
    detail = str(body.get("detail") or "").strip()
    if status == 401:
        return f"the server refused the token: {detail or 'not signed in'}"
    refusals = body.get("refusals") or []
    if refusals:
        lines = []
        for refusal in refusals:
            host = refusal.get("host")
            message = refusal.get("message") or refusal.get("code") or "refused"
            lines.append(f"{host}: {message}" if host and host not in message else message)
        head = "refused" if status != 403 else "not allowed"
        if len(lines) == 1:
            return f"{head}: {lines[0]}"
        return f"{head}:\n  " + "\n  ".join(lines)
    problems = body.get("problems") or []
    if len(problems) > 1:
        return "refused:\n  " + "\n  ".join(str(p) for p in problems)
    if isinstance(body.get("params"), dict):  # a recipe's form refused its parameters
        where = f" on {body['host']}" if isinstance(body.get("host"), str) else ""
        lines = _field_errors(body["params"])
        return f"invalid parameters{where}:\n  " + "\n  ".join(lines)
    fields = _field_errors(body.get("errors") if "errors" in body else body)
    if detail and fields and not (len(fields) == 1 and fields[0] == detail):
        return detail + "\n  " + "\n  ".join(fields)
    if detail:
        return detail
    if len(fields) == 1:
        return fields[0]
    if fields:
        return "the server refused the request:\n  " + "\n  ".join(fields)
    return f"the server answered {status}"


class Client:
    def __init__(self, url: str, token: str | None, *, timeout: float = TIMEOUT):
        self.url = normalise_url(url)
        self._token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __repr__(self) -> str:  # never the token
        return f"Client({self.url!r})"

    def full_url(self, path: str, params: dict[str, Any] | None = None) -> str:
        url = self.url + path
        query = {k: v for k, v in (params or {}).items() if v not in (None, "", False)}
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        return url

    def _open(self, method: str, path: str, params=None, body=None, *, timeout=None):
        data = None
        headers = {
            "Accept": "application/json",
            "User-Agent": f"remora-cli/{__version__}",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = self.full_url(path, params)
        # The scheme is http or https: normalise_url refused any other.
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        where = self.url
        try:
            return self._opener.open(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as error:
            raw = error.read()
            status = error.code
            if 300 <= status < 400:
                target = error.headers.get("Location", "?")
                raise ApiError(
                    f"{where} redirected to {target}: use the console's own URL "
                    "(`remora login --url ...`)",
                    status=status,
                ) from None
            try:
                document = json.loads(raw)
            except ValueError:
                raise ApiError(
                    f"{method} {path} answered {status} {error.reason}, not JSON: "
                    f"{_first_line(raw)}",
                    status=status,
                ) from None
            raise ApiError(explain(status, document), status=status, body=document) from None
        except urllib.error.URLError as error:
            reason = error.reason
            said = getattr(reason, "strerror", None) or str(reason)
            raise ApiError(f"cannot reach {where}: {said}") from None
        except TimeoutError:
            waited = timeout or self.timeout
            raise ApiError(f"{where} did not answer within {waited:.0f} s") from None
        except OSError as error:
            raise ApiError(f"cannot reach {where}: {error.strerror or error}") from None

    def request(self, method: str, path: str, params=None, body=None, *, timeout=None) -> Any:
        with self._open(method, path, params, body, timeout=timeout) as answer:
            try:
                raw = answer.read()
            except TimeoutError:
                raise ApiError(f"{self.url} stopped answering mid-way") from None
            status = answer.status
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(
                f"{method} {path} answered {status}, not JSON: {_first_line(raw)}", status=status
            ) from None

    def get(self, path: str, params=None, **kwargs) -> Any:
        return self.request("GET", path, params, **kwargs)

    def post(self, path: str, body=None, **kwargs) -> Any:
        return self.request("POST", path, None, body if body is not None else {}, **kwargs)

    def stream(self, path: str, params=None, *, size: int = 64 * 1024) -> Iterator[bytes]:
        """The body of a GET, in chunks as they come (the audit export)."""
        with self._open("GET", path, params, timeout=max(self.timeout, 120)) as answer:
            while True:
                try:
                    chunk = answer.read1(size) if hasattr(answer, "read1") else answer.read(size)
                except TimeoutError:
                    raise ApiError(f"{self.url} stopped answering mid-way") from None
                if not chunk:
                    return
                yield chunk
