"""Triggers: each module turns one kind of raw event into typed ``Work``.

Each module exposes ``NAME``, ``matches(event) -> bool`` and
``parse(event, settings, runtime) -> Work``. Telling the trigger from the event's shape needs
only the cheap checks below (PLATFORM §2.4, first match wins); the module itself is imported
when its event arrives, so a cold start pays only for the path it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from types import ModuleType

CHAT_JOB_KEY = "evs_export_chat_job"
CONTINUATION_KEY = "evs_export_continuation"


def _has(*keys: str) -> Callable[[object], bool]:
    return lambda event: isinstance(event, Mapping) and any(k in event for k in keys)


def _is_apig(event: object) -> bool:
    return isinstance(event, Mapping) and "httpMethod" in event and "requestContext" in event


def _is_timer(event: object) -> bool:
    return isinstance(event, Mapping) and event.get("trigger_type") == "TIMER"


ROUTES: list[tuple[str, Callable[[object], bool]]] = [
    ("http", _is_apig),
    ("timer", _is_timer),
    ("cts", _has("cts")),
    ("chat_job", _has(CHAT_JOB_KEY)),
    ("continuation", _has(CONTINUATION_KEY)),
    ("direct", _has("volume_id", "os-volume_upload_image", "exports", "action")),
]


def route(event: object) -> ModuleType | None:
    """The trigger module for ``event``, or None for a shape no trigger knows."""
    for name, matches in ROUTES:
        if matches(event):
            return import_module(f"function.triggers.{name}")
    return None
