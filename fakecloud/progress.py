"""Explicit state transitions for the fake's asynchronous work (exports, replications).

A Schedule says how the next operations of one kind finish: `immediate` (final when created),
`polls` (reads 2..N see the intermediate state, read N+1 the outcome) or `duration`
(intermediate once the fake clock has moved, final after N seconds), ending in the default
outcome or one set per name. Each operation keeps a Timeline, its own copy of the schedule,
which says what a read or the clock brings: nothing, RUN (intermediate) or FINISH. Tests move
operations by reads or by a ManualClock; nothing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

MODES = ("immediate", "polls", "duration")
RUN: Literal["run"] = "run"
FINISH: Literal["finish"] = "finish"
Transition = Literal["run", "finish"] | None


@dataclass
class Timeline:
    """One operation's schedule: how it advances from `started`, and the outcome it ends in."""

    mode: str
    after: float
    outcome: str
    started: datetime
    polls: int = 0

    def final_at_start(self) -> bool:
        """Whether the operation is final as soon as it is created."""
        return self.mode == "immediate" or (self.mode == "duration" and self.after <= 0)

    def poll(self) -> Transition:
        """Count one read (polls mode): FINISH after `after` reads, else RUN from the second."""
        if self.mode != "polls":
            return None
        self.polls += 1
        if self.polls > self.after:
            return FINISH
        return RUN if self.polls > 1 else None

    def at(self, now: datetime) -> Transition:
        """The clock at `now` (duration mode): FINISH once `after` seconds have passed, else RUN
        once any time has."""
        if self.mode != "duration":
            return None
        elapsed = (now - self.started).total_seconds()
        if elapsed >= self.after:
            return FINISH
        return RUN if elapsed > 0 else None


@dataclass
class Schedule:
    """How later operations finish; `outcomes[0]` is the default outcome.

    `strict_after`: `after` must be a real number (not a bool), as the control routes need.
    """

    outcomes: tuple[str, ...]
    strict_after: bool = False
    mode: str = "immediate"
    after: float = 0.0
    outcome: str = ""
    by_name: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to immediate and the default outcome, with no outcome per name."""
        self.mode, self.after, self.outcome = "immediate", 0.0, self.outcomes[0]
        self.by_name.clear()

    def set(self, mode: str, after: float, outcome: str) -> None:
        """Set the mode, `after` (reads or seconds) and default outcome; ValueError if invalid."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self._check(outcome)
        if self.strict_after:
            if isinstance(after, bool) or not isinstance(after, int | float) or after < 0:
                raise ValueError("after must be a number >= 0")
        elif after < 0:
            raise ValueError("after must be >= 0")
        self.mode, self.after, self.outcome = mode, float(after), outcome

    def set_outcome(self, name: str, outcome: str) -> None:
        """Make operations named `name` end in `outcome` whatever the default."""
        self._check(outcome)
        self.by_name[name] = outcome

    def start(self, name: str, now: datetime) -> Timeline:
        """The timeline of an operation named `name` starting `now`."""
        return Timeline(self.mode, self.after, self.by_name.get(name, self.outcome), now)

    def to_dict(self) -> dict[str, Any]:
        """The settings, JSON-ready."""
        return {
            "mode": self.mode,
            "after": self.after,
            "outcome": self.outcome,
            "outcomes": dict(self.by_name),
        }

    def _check(self, outcome: str) -> None:
        if outcome not in self.outcomes:
            raise ValueError(f"outcome must be one of {self.outcomes}, not {outcome!r}")
