"""Fixtures for every tier (logging state never leaks from one test into the next), and the
tier marker of each test, from the folder it is in."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from function import log

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "functional", "contract", "e2e", "resilience")


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the first folder under ``tests/``, when it is one of TIERS."""
    try:
        parts = path.resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier (``pytest -m functional``); a test outside the tier
    folders is an error, so that none is left out of every ``make <tier>``."""
    for item in items:
        tier = tier_of(item.path)
        if tier is None:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live in tests/<tier>/, tier one of {', '.join(TIERS)}"
            )
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    log.reset()


@pytest.fixture
def log_buffer() -> io.StringIO:
    """The function's JSON log lines go to this buffer instead of stdout."""
    stream = io.StringIO()
    log.use_stream(stream)
    log.configure("INFO", stream)
    return stream
