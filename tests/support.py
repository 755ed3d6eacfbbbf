"""Helpers every test tier shares."""

from __future__ import annotations

import structlog

from function import log


def reset_logging() -> None:
    """structlog's global config and context, the stream choice and the redactor, as new
    (tests share one process, an invocation changes them)."""
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    log.use_stream(None)
    log._CONFIGURED.clear()
    log.REDACTOR.clear()
