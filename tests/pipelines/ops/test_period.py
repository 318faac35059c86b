"""Reporting periods from the command line and the query string: ISO dates and datetimes, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import InputError
from pipelines.ops.period import Period, parse_period


def test_dates_and_datetimes_become_utc_bounds() -> None:
    assert parse_period("2026-01-01", "2026-01-03") == Period(
        "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00"
    ), "a bare end date includes its whole day"
    assert parse_period("2026-01-01T09:30+02:00", None) == Period("2026-01-01T07:30:00+00:00", None)
    assert parse_period("2026-01-01T09:30Z", "2026-01-01T10:00") == Period(
        "2026-01-01T09:30:00+00:00", "2026-01-01T10:00:00+00:00"
    )
    assert parse_period(None, " ") == Period()
    p = parse_period("2026-01-02", "2026-01-02")
    assert p.contains(datetime(2026, 1, 2, 23, 59, tzinfo=UTC)) and not p.contains(datetime(2026, 1, 3, tzinfo=UTC))


@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        ("2026-02-30", None, "from='2026-02-30' is not an ISO date"),
        ("yesterday", None, "from='yesterday' is not an ISO date"),
        (None, "9999-12-31", "to='9999-12-31' is not an ISO date"),
        (None, "2026-01-01T25:00", "is not an ISO date"),
        ("2026-01-05", "2026-01-01", "is not before"),
        ("2026-01-01T10:00Z", "2026-01-01T10:00Z", "is not before"),
    ],
)
def test_bad_bounds_are_input_errors_with_a_fix(start: str | None, end: str | None, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment) as err:
        parse_period(start, end)
    assert err.value.hint
