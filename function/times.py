"""Times in the shapes the platform and the APIs send: epoch ms or s (number or digits),
ISO 8601, and CTS's ``2016/12/08 11:07:28 GMT+08:00``. Shared by the triggers and the
image life cycle."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from function.errors import InvalidInput

_MS_THRESHOLD = 100_000_000_000  # above this an epoch number is in milliseconds
_ISO = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2})?)(?:[.,](?P<frac>[0-9]{1,9}))?)?"
    r" ?(?P<tz>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.IGNORECASE,
)


def parse_iso(text: str) -> datetime | None:
    """ISO 8601 as the platform writes it (``Z``, ``+08:00``, ``+0800``, any fraction), the
    same on Python 3.10 as on 3.11; naive times are UTC. None when unreadable."""
    match = _ISO.fullmatch(text.strip())
    if match is None:
        return None
    clock = match["time"] or "00:00:00"
    if len(clock) == 5:
        clock += ":00"
    frac = (match["frac"] or "0")[:6].ljust(6, "0")
    tz = (match["tz"] or "+00:00").upper()
    if tz == "Z":
        tz = "+00:00"
    elif len(tz) == 3:
        tz += ":00"
    elif ":" not in tz:
        tz = f"{tz[:3]}:{tz[3:]}"
    try:
        return datetime.fromisoformat(f"{match['date']}T{clock}.{frac}{tz}")
    except ValueError:
        return None


def parse_time(value: object, field: str) -> datetime | None:
    """An aware datetime, None when absent; InvalidInput naming ``field`` when unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput(field, f"{field} must be a time, not a boolean")
    if isinstance(value, (int, float)) or (
        isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()
    ):
        number = float(value)
        if number > _MS_THRESHOLD:
            number /= 1000
        try:
            return datetime.fromtimestamp(number, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput(field, f"{field} is out of range") from None
    if isinstance(value, str) and len(value) <= 64:
        text = value.strip()
        parsed = parse_iso(text)
        if parsed is None:
            try:
                parsed = datetime.strptime(
                    text.replace("GMT", "").replace("UTC", ""), "%Y/%m/%d %H:%M:%S %z"
                )
            except ValueError:
                parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise InvalidInput(field, f"{field} is not a time (epoch ms or s, or ISO 8601)")


def iso_z(when: datetime) -> str:
    """ISO 8601 as the events and internal events write times: a UTC offset as ``Z``
    (another offset is kept as it is)."""
    return when.isoformat().replace("+00:00", "Z")


def utc_z(when: datetime | None) -> str | None:
    """``when`` in UTC as ISO 8601 with ``Z``; None stays None."""
    return None if when is None else iso_z(when.astimezone(timezone.utc))
