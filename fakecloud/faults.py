"""Injected faults: error statuses, throttling, latency and connection resets."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

# PLATFORM.md 10.5: service endpoints answer a throttled call with this body (product APIs use
# APIG.0308), and no Retry-After is documented, so none is sent unless a fault sets one.
THROTTLED = {
    "error_code": "APIGW.0308",
    "error_msg": "The throttling threshold has been reached: policy user over ratelimit,"
    " limit:200,time:5 minute",
}
UNAVAILABLE = {"error": {"code": "EVS.5503", "message": "Service unavailable."}}


@dataclass
class Fault:
    """One fault rule, applied to the next `times` requests it matches (-1 = forever).

    `method` None or "*" matches any method; `path` is a regex searched in the decoded path.
    `status` answers with that status (and `body`, or a default) without processing;
    `reset="before"` drops the connection without processing, `"after"` processes the
    request (state changes) then drops it; `latency` delays the request by that many seconds.
    """

    method: str | None = None
    path: str = ""
    status: int | None = None
    retry_after: str | None = None
    body: dict[str, Any] | None = None
    reset: str | None = None
    latency: float = 0.0
    times: int = 1
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.reset not in (None, "before", "after"):
            raise ValueError(f"reset must be 'before', 'after' or None, not {self.reset!r}")
        if self.reset is not None and self.status is not None:
            raise ValueError("a fault either answers with a status or resets, not both")
        if self.times == 0 or self.times < -1:
            raise ValueError("times must be a positive count or -1 (forever)")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request (ignoring how often it has fired)."""
        if self.method not in (None, "*") and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None

    def default_body(self) -> dict[str, Any]:
        """The body sent for a status fault when none was given."""
        if self.body is not None:
            return self.body
        if self.status == 429:
            return THROTTLED
        if self.status is not None and self.status >= 500:
            return UNAVAILABLE
        return {"error_code": "FAKE.0001", "error_msg": f"Injected fault (HTTP {self.status})."}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, for the control routes."""
        return asdict(self)


class Faults:
    """The ordered, thread-safe set of active fault rules; the first match wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Activate `fault` and return it."""
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first rule matching the request, counting one use of it."""
        with self._lock:
            for fault in self._rules:
                if fault.matches(method, path):
                    fault.hits += 1
                    if fault.times != -1 and fault.hits >= fault.times:
                        self._rules.remove(fault)
                    return fault
        return None

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter(list(self._rules))

    def __len__(self) -> int:
        with self._lock:
            return len(self._rules)


def storm(
    seed: int,
    *,
    throttled: int = 20,
    unavailable: int = 20,
    internal: int = 10,
    reset_after: int = 8,
    reset_before: int = 7,
) -> list[Fault]:
    """A fault storm in a seeded order, one fault per request it is given to: by default
    issue 9's 65 (20 x 429, 20 x 503, 10 x 500, 15 connection resets, 8 of them after the
    request was processed). Used by the resilience tests and ``bench/storm.py`` alike."""
    faults = (
        [Fault(status=429) for _ in range(throttled)]
        + [Fault(status=503) for _ in range(unavailable)]
        + [Fault(status=500) for _ in range(internal)]
        + [Fault(reset="after") for _ in range(reset_after)]
        + [Fault(reset="before") for _ in range(reset_before)]
    )
    random.Random(seed).shuffle(faults)
    return faults
