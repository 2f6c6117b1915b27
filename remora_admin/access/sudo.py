"""Sudo mode: sensitive actions ask for the password again unless it was entered recently."""

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

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

    A POST without sudo mode is not carried out: its form is shown again after confirming.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not in_sudo_mode(request):
            back = request.get_full_path() if request.method == "GET" else request.path
            query = urlencode({"next": back})
            return redirect(f"{reverse('access:confirm_password')}?{query}")
        return view(request, *args, **kwargs)

    return wrapped
