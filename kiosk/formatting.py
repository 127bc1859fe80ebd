"""Dates, times and durations as a person reads them, in the kiosk's languages.

Day and month names come from the message catalogues: two formats do not warrant a
locale library and the time it takes to load its data at start-up.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from kiosk.i18n import Messages, french


def day(value: date, messages: Messages = french) -> str:
    """« vendredi 13 décembre 2019 », « mardi 1er décembre 2026 »."""
    weekdays = messages("format.weekdays").split()
    months = messages("format.months").split()
    number = messages("format.first_day") if value.day == 1 else str(value.day)
    return messages(
        "format.day",
        weekday=weekdays[value.weekday()],
        day=number,
        month=months[value.month - 1],
        year=value.year,
    )


def numeric_date(text: str) -> str:
    """« 01/03/2002 » for a date stored as ISO text; any other text as it is."""
    try:
        return date.fromisoformat(text).strftime("%d/%m/%Y")
    except (TypeError, ValueError):
        return text


def short_day(value: date, messages: Messages = french) -> str:
    """« dim. 10/11 »: a chart's label, as short as a day can be and still be read."""
    weekday = messages("format.weekdays").split()[value.weekday()]
    return f"{weekday[:3]}. {value:%d/%m}"


def instant(moment: datetime, zone: ZoneInfo, messages: Messages = french) -> str:
    """« mercredi 27 novembre 2019 à 19:00 », in the given zone."""
    local = moment.astimezone(zone)
    return messages("format.instant", day=day(local.date(), messages), time=f"{local:%H:%M}")


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
