import re

from django import template

register = template.Library()
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@register.filter
def output_text(data) -> str:
    """A chunk of a run's output as text: UTF-8 (bad bytes replaced), terminal escapes removed.
    The template's autoescaping then makes sure nothing from a host is read as HTML."""
    return ANSI.sub("", bytes(data).decode("utf-8", errors="replace"))
