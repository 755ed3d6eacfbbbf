"""Event times in the shapes the platform sends: epoch ms or s (number or digits), ISO 8601,
and CTS's ``2016/12/08 11:07:28 GMT+08:00``."""

from __future__ import annotations

from datetime import datetime, timezone

from function.errors import InvalidInput

_MS_THRESHOLD = 100_000_000_000  # above this an epoch number is in milliseconds


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
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
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
