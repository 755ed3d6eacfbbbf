"""The invocation's time budget, the one object every phase asks before it spends time: the
exporter (an attempt and its wait, then the reserve for the hand-off and delivery), retries
(a backoff, then what must follow the call), the life cycle and copies (one more write, then
delivery and return), the CTS wait (one more poll) and the sinks (a delivery attempt's
timeouts).

``FunctionGraph`` gives ``context.getRemainingTimeInMilliSeconds()``; ``Runtime`` turns it
into a countdown and ``Runtime.budget`` into this object. Each caller says what it is about
to spend (``cost_ms``) and what must still be left afterwards (``keep_ms``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SAFETY_MARGIN_MS = 3000  # left after a call that may be retried, for what follows it
LOOK_MIN_MS = 1000  # a last lookup after an ambiguous failure needs at least this much
WRITE_RESERVE_MS = 5000  # kept back after the life cycle's last write, for delivery and return
LIFECYCLE_KEEP_MS = SAFETY_MARGIN_MS + WRITE_RESERVE_MS
# Kept back while the CTS wait polls: the exports of what is ready, the hand-off and the
# delivery of the results still have to fit.
WAIT_KEEP_MS = 5000


@dataclass(frozen=True)
class Budget:
    """What is left of the invocation's time, and whether a cost still fits."""

    remaining_ms: Callable[[], int]
    keep_ms: float = SAFETY_MARGIN_MS  # what ``covers`` keeps back when not told otherwise

    def left_ms(self) -> int:
        return self.remaining_ms()

    def covers(self, cost_ms: float = 0.0, keep_ms: float | None = None) -> bool:
        """True while spending ``cost_ms`` still leaves ``keep_ms`` (default ``self.keep_ms``)."""
        keep = self.keep_ms if keep_ms is None else keep_ms
        return self.remaining_ms() - cost_ms >= keep

    def seconds_left(self, keep_ms: float) -> float:
        """Seconds that may be spent while keeping ``keep_ms`` back (may be negative)."""
        return (self.remaining_ms() - keep_ms) / 1000
