"""Triggers: each module turns one kind of raw event into typed ``Work``.

Each exposes ``NAME``, ``matches(event) -> bool`` and ``parse(event, settings, runtime) -> Work``.
``TRIGGERS`` is the ordered list the app asks, first match wins (PLATFORM §2.4).
"""

from __future__ import annotations

from types import ModuleType

from function.triggers import chat_job, continuation, cts, direct, http, timer

TRIGGERS: list[ModuleType] = [http, timer, cts, chat_job, continuation, direct]
