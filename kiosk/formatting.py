"""Dates, times and durations as a person reads them, in the kiosk's languages."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from kiosk.i18n import Messages, french


def instant(moment: datetime, zone: ZoneInfo, messages: Messages = french) -> str:
    """« mercredi 27 novembre 2019 à 19:00 », in the given zone."""
    from babel.dates import format_datetime

    return format_datetime(moment, messages("format.instant"), tzinfo=zone, locale=messages.language)


def day(value: date, messages: Messages = french) -> str:
    """« vendredi 13 décembre 2019 »."""
    from babel.dates import format_date

    return format_date(value, messages("format.day"), locale=messages.language)


def duration(delta: timedelta, messages: Messages = french) -> str:
    """A wait, rounded up to the second: « 1 min 05 s », « 45 s », « 2 h 03 min »."""
    seconds = max(int(-(-delta.total_seconds() // 1)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return messages("format.hours_minutes", hours=hours, minutes=f"{minutes:02d}")
    if minutes:
        return messages("format.minutes_seconds", minutes=minutes, seconds=f"{seconds:02d}")
    return messages("format.seconds", seconds=seconds)
