"""Triggers: each module turns one kind of raw event into typed ``Work``.

Each module exposes ``NAME``, ``matches(event) -> bool`` and
``parse(event, settings, runtime) -> Work``. ``ORDER`` is the routing order (PLATFORM §2.4,
first match wins): the router asks each module's own ``matches``, so every module is cheap
to import and defers what only its ``parse`` needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from function.config import Settings
    from function.runtime import Runtime
    from function.work import Work

CHAT_JOB_KEY = "evs_export_chat_job"
CONTINUATION_KEY = "evs_export_continuation"

ORDER = ("http", "timer", "cts", "chat_job", "continuation", "direct")


class Trigger(Protocol):
    """What the router needs of a trigger module."""

    NAME: str

    def matches(self, event: object) -> bool: ...

    def parse(self, event: Any, settings: Settings, runtime: Runtime) -> Work:
        """``event`` is one ``matches`` took (a mapping for every trigger in ``ORDER``)."""


def trigger(name: str) -> Trigger:
    """The trigger module ``function.triggers.<name>``."""
    module: Trigger = import_module(f"{__name__}.{name}")
    return module


def route(event: object) -> Trigger | None:
    """The first trigger in ``ORDER`` whose ``matches`` takes ``event``, or None."""
    for name in ORDER:
        module = trigger(name)
        if module.matches(event):
            return module
    return None
