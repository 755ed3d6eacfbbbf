"""function/times.py: every time shape the platform sends, as aware datetimes (vectors)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from function.errors import InvalidInput
from function.times import parse_iso, parse_time

UTC = timezone.utc
CST = timezone(timedelta(hours=8))
T = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T02:00:00Z", T),
        ("2025-03-01T02:00:00z", T),
        ("2025-03-01T10:00:00+08:00", T),
        ("2025-03-01T10:00:00+0800", T),
        ("2025-03-01T10:00:00+08", T),
        ("2025-03-01 02:00:00", T),
        ("2025-03-01T02:00", T),
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025-03-01T02:00:00.123456789Z", T.replace(microsecond=123456)),
        ("2025-03-01T02:00:00,5Z", T.replace(microsecond=500000)),
        ("  2025-03-01T02:00:00Z  ", T),
    ],
)
def test_parse_iso_vectors(text: str, expected: datetime) -> None:
    """ISO 8601 with Z, ±hh[:mm], a space or T, any fraction, or no time at all is read."""
    assert parse_iso(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2025-13-01", "2025-02-30T00:00:00Z"])
def test_parse_iso_unreadable_is_none(text: str) -> None:
    """Text that is not a valid ISO 8601 time gives None."""
    assert parse_iso(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (1740794400, T),
        (1740794400.0, T),
        ("1740794400", T),
        (1740794400000, T),
        ("1740794400000", T),
        ("2025-03-01T10:00:00+08:00", T),
        ("2016/12/08 11:07:28 GMT+08:00", datetime(2016, 12, 8, 11, 7, 28, tzinfo=CST)),
        ("2016/12/08 03:07:28 UTC+00:00", datetime(2016, 12, 8, 3, 7, 28, tzinfo=UTC)),
    ],
)
def test_parse_time_vectors(value: object, expected: datetime | None) -> None:
    """Epoch seconds or milliseconds (number or digits), ISO 8601 and CTS's format are read;
    absent is None."""
    assert parse_time(value, "time") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "not a boolean"),
        ("soon", "is not a time"),
        ("1" * 65, "out of range"),
        (10**20, "out of range"),
        ("x" * 65, "is not a time"),
        ([2025], "is not a time"),
    ],
)
def test_parse_time_rejects_naming_the_field(value: object, message: str) -> None:
    """An unreadable time is InvalidInput naming the field."""
    with pytest.raises(InvalidInput) as caught:
        parse_time(value, "cts.time")
    assert caught.value.field == "cts.time"
    assert message in caught.value.message


def test_parse_time_result_is_always_aware() -> None:
    """A naive ISO time is taken as UTC."""
    parsed = parse_time("2025-03-01T02:00:00", "time")
    assert parsed is not None and parsed.tzinfo is not None


def test_iso_z_writes_utc_as_z_and_utc_z_converts_first() -> None:
    """Times are written one way: a UTC offset as Z (iso_z keeps another offset; utc_z
    converts to UTC first, and passes None through)."""
    from datetime import datetime, timedelta, timezone

    from function.times import iso_z, utc_z

    utc = datetime(2025, 3, 1, 1, 0, tzinfo=timezone.utc)
    cst = utc.astimezone(timezone(timedelta(hours=8)))
    assert iso_z(utc) == "2025-03-01T01:00:00Z"
    assert iso_z(cst) == "2025-03-01T09:00:00+08:00"
    assert utc_z(cst) == "2025-03-01T01:00:00Z"
    assert utc_z(None) is None
