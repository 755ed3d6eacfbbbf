"""Helpers every test tier shares."""

from __future__ import annotations

from function import log


def reset_logging() -> None:
    """Logging as new (tests share one process, an invocation changes it): ``log.reset``."""
    log.reset()
