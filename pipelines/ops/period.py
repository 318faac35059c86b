"""A reporting period from ``--from``/``--to`` (or ``?from=&to=``): ISO dates or datetimes, UTC unless given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from core.errors import InputError


@dataclass(frozen=True)
class Period:
    """``[start, end)`` as ISO UTC strings (None: open), comparable with the answers' ``created_at``."""

    start: str | None = None
    end: str | None = None

    def contains(self, moment: datetime) -> bool:
        stamp = moment.astimezone(UTC).isoformat()
        return (self.start is None or stamp >= self.start) and (self.end is None or stamp < self.end)


def _instant(value: str | None, name: str, *, end: bool) -> str | None:
    """ISO date or datetime -> ISO UTC string; a bare ``to`` date includes that whole day."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(0), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InputError(
            f"{name}={value!r} is not an ISO date or datetime",
            hint=f"use e.g. {name} 2026-11-21 or 2026-11-21T09:00Z",
        ) from exc
    return moment.astimezone(UTC).isoformat()


def parse_period(from_: str | None, to: str | None) -> Period:
    """The period ``[from, to)``; a bare ``to`` date includes its day. Bad or reversed bounds are an InputError."""
    start, end = _instant(from_, "from", end=False), _instant(to, "to", end=True)
    if start and end and start >= end:
        raise InputError(f"from={from_} is not before to={to}", hint="swap them")
    return Period(start, end)
