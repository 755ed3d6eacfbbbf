"""Fixtures for every tier: logging state never leaks from one test into the next."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from function import log
from tests.support import reset_logging


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    reset_logging()


@pytest.fixture
def log_buffer() -> io.StringIO:
    """The function's JSON log lines go to this buffer instead of stdout."""
    stream = io.StringIO()
    log.use_stream(stream)
    log.configure("INFO", stream)
    return stream
