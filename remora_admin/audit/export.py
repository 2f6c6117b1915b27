"""The one CSV writer of the console: every export goes through `csv_writer`.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to a
spreadsheet (OWASP "CSV injection"): a grant reason `=HYPERLINK(...)` would run when an admin
opens the export. Such text cells are written with a leading single quote, which spreadsheets
show as text. Numbers written as numbers (int, float, Decimal) are data of ours, not text someone
typed, and are left alone; the same digits given as a string are neutralised like any text.

In the lowest layer (imports nothing of ours) so that every layer may use it; a test fails when
any other module calls `csv.writer(` itself.
"""

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralise(value: Any) -> Any:
    """The cell as it is safe to write: text that a spreadsheet would evaluate gets a `'`."""
    if value is None or isinstance(value, bool):
        return "" if value is None else value
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class SafeCsvWriter:
    """csv.writer's writerow/writerows, with every cell neutralised first."""

    def __init__(self, file: _Writable, **fmtparams: Any):
        self._writer = csv.writer(file, **fmtparams)

    @property
    def dialect(self):
        return self._writer.dialect

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(file: _Writable, **fmtparams: Any) -> SafeCsvWriter:
    """A CSV writer onto `file` (an HttpResponse, a StringIO, an open file) that neutralises
    formula-like cells. Same keyword arguments as csv.writer."""
    return SafeCsvWriter(file, **fmtparams)
