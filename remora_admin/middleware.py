import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Unavailable · Remora Admin</title></head><body>
<h1>The console's database does not answer</h1>
<p>Nothing you submitted was saved, and no job was started. Try again in a moment; if it
persists, tell the lead admin.</p></body></html>"""


class DatabaseUnavailableMiddleware:
    """A database that does not answer gives a clear 503, not a traceback. The page needs no
    database itself (no session, no user, no template context)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except (OperationalError, InterfaceError) as exc:
            return self._unavailable(exc)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            return self._unavailable(exception)
        return None

    @staticmethod
    def _unavailable(exc: Exception) -> HttpResponse:
        log.error("Database unavailable: %s", exc)
        return HttpResponse(PAGE, status=503, headers={"Retry-After": "30"})
