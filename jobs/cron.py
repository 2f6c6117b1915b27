"""Cron expressions and IANA time zones, checked in words (cronsim does the arithmetic, with
Debian cron's behaviour across daylight-saving changes)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError
from django.core.exceptions import ValidationError


def zone_info(name: str) -> ZoneInfo:
    """The IANA time zone, or ValidationError in words."""
    if name not in zones():
        raise ValidationError(
            f"“{name}” is not an IANA time zone: write one such as Europe/Berlin, "
            "America/New_York or UTC."
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"The time zone “{name}” cannot be loaded here.") from None


def zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones() | {"UTC"}
    return _ZONES


_ZONES: set[str] | None = None


def check_cron(expression: str) -> str:
    """The expression, tidied, or ValidationError in words. Five fields: at most once a minute."""
    tidy = " ".join(expression.split())
    fields = tidy.split(" ") if tidy else []
    if len(fields) == 6:
        raise ValidationError(
            "Six fields: a seconds field is not allowed. A schedule fires at most once a minute "
            "(minute hour day-of-month month day-of-week)."
        )
    if len(fields) != 5:
        raise ValidationError(
            "A cron expression has five fields: minute hour day-of-month month day-of-week "
            "(e.g. 30 2 * * * for 02:30 every day)."
        )
    try:
        CronSim(tidy, datetime(2026, 1, 1, tzinfo=UTC))
    except CronSimError as error:
        raise ValidationError(f"“{tidy}” is not a valid cron expression: {error}.") from None
    return tidy


def next_times(expression: str, tz: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` times the expression fires after `after`, in the time zone `tz`."""
    times = CronSim(expression, after.astimezone(zone_info(tz)))
    found = []
    for _ in range(count):
        try:
            found.append(next(times))
        except StopIteration:
            break
    return found
