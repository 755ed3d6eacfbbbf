"""Shared fixtures: every unit test starts with logging and its redactor reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from function import log


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Keep structlog's global config, context and the redactor from leaking between tests."""
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    log._CONFIGURED.clear()
    log.REDACTOR.clear()
