"""Sudo mode: sensitive actions ask for the password again unless it was entered recently."""

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

SUDO_UNTIL = "remora_sudo_until"


def in_sudo_mode(request: HttpRequest) -> bool:
    return request.session.get(SUDO_UNTIL, 0) > time.time()


def start_sudo_mode(request: HttpRequest) -> None:
    request.session[SUDO_UNTIL] = time.time() + settings.REMORA_SUDO_MINUTES * 60


def sudo_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send the user to confirm their password first, then back to where they were.

    A POST without sudo mode is not carried out: after confirming, the user is back on the page
    the form was on and submits it again.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not in_sudo_mode(request):
            back = request.get_full_path()
            if request.method != "GET":
                # Back to the page the form was on (this URL may answer POST only).
                referer = urlsplit(request.headers.get("Referer", ""))
                if referer.netloc == request.get_host() and referer.path:
                    back = referer.path + (f"?{referer.query}" if referer.query else "")
            query = urlencode({"next": back})
            return redirect(f"{reverse('access:confirm_password')}?{query}")
        return view(request, *args, **kwargs)

    return wrapped
