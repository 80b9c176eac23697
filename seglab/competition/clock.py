"""Time in the competition: UNIX seconds in the database, local wall-clock text on screen."""

from __future__ import annotations

import datetime as dt
import time

from seglab.competition.errors import CompetitionError


def now() -> float:
    """Seconds since the epoch (what every timestamp column holds)."""
    return time.time()


def format_timestamp(seconds: float | None, *, with_date: bool = True) -> str:
    """Local time, e.g. ``2025-06-01 14:05:09`` (``-`` for none)."""
    if seconds is None:
        return "-"
    moment = dt.datetime.fromtimestamp(seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``, ``3 d 4 h``: for quota windows and time left."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``"90"``/``"90s"``, ``"15m"``, ``"1h"``, ``"1d"`` -> seconds (a positive whole number)."""
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = cleaned[len(number) :] or "s"
    try:
        seconds = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise CompetitionError(f"cannot read the duration {text!r}: write e.g. 3600, 90s, 15m, 1h or 1d") from None
    if seconds < 1:
        raise CompetitionError(f"the duration {text!r} must be at least one second")
    return int(round(seconds))


def parse_timestamp(text: str) -> float:
    """An ISO date-time in local time (``2025-06-01T17:00`` or ``2025-06-01 17:00``) -> UNIX seconds."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CompetitionError(f"cannot read the date {text!r}: write it as YYYY-MM-DDTHH:MM (local time)") from None
    return moment.timestamp()
