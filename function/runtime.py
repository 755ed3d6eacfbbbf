"""What one invocation runs with: the context's facts, and time, sleep, randomness and IDs
passed in, so tests can fix them."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from function.budget import Budget

DEFAULT_BUDGET_MS = 900_000


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class Runtime:
    request_id: str = field(default_factory=new_uuid)
    function_name: str = "evs-export"
    function_version: str = "latest"
    cold_start: bool = False
    remaining_ms: Callable[[], int] = lambda: DEFAULT_BUDGET_MS
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic  # seconds; what ``sleep`` advances
    new_id: Callable[[], str] = new_uuid
    rng: random.Random = field(default_factory=random.Random)

    @property
    def budget(self) -> Budget:
        """The invocation's time budget (``function.budget``)."""
        return Budget(self.remaining_ms)

    @classmethod
    def from_context(cls, context: Any, cold_start: bool) -> Runtime:
        """Read the FunctionGraph context; ``None`` (local runs) gives local defaults."""
        runtime = cls(cold_start=cold_start)
        if context is None:
            return runtime
        request_id = _call(context, "getRequestID")
        if isinstance(request_id, str) and request_id:
            runtime.request_id = request_id
        name = _call(context, "getFunctionName")
        if isinstance(name, str) and name:
            runtime.function_name = name
        version = _call(context, "getVersion")
        if isinstance(version, str) and version:
            runtime.function_version = version
        getter = getattr(context, "getRemainingTimeInMilliSeconds", None)
        if callable(getter):
            start = time.monotonic()
            first = _call(context, "getRemainingTimeInMilliSeconds")
            if isinstance(first, (int, float)) and first > 0:
                # Read once, then count down locally: cheaper and safe if the getter misbehaves.
                budget = int(first)

                def remaining() -> int:
                    return budget - int((time.monotonic() - start) * 1000)

                runtime.remaining_ms = remaining
        return runtime


def _call(context: Any, method: str) -> object:
    getter = getattr(context, method, None)
    if not callable(getter):
        return None
    try:
        return getter()
    except Exception:
        return None
