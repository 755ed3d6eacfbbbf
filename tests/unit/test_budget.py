"""The one time-budget object every phase asks (function.budget)."""

from __future__ import annotations

import pytest

from function.budget import LIFECYCLE_KEEP_MS, SAFETY_MARGIN_MS, Budget
from function.runtime import Runtime


@pytest.mark.parametrize(
    ("left", "cost", "keep", "covers"),
    [
        (10_000, 0, None, True),
        (SAFETY_MARGIN_MS, 0, None, True),
        (SAFETY_MARGIN_MS - 1, 0, None, False),
        (10_000, 6_999, None, True),
        (10_000, 7_001, None, False),
        (10_000, 2_000, LIFECYCLE_KEEP_MS, True),
        (10_000, 2_001, LIFECYCLE_KEEP_MS, False),
        (500, 0, 0, True),
    ],
)
def test_covers_a_cost_while_keeping_what_must_follow(
    left: int, cost: float, keep: float | None, covers: bool
) -> None:
    """A cost fits while what is left after it is at least the amount kept back (by default
    the safety margin after a retried call)."""
    assert Budget(lambda: left).covers(cost, keep) is covers


def test_default_keep_is_the_budgets_own_and_runtime_gives_a_live_countdown() -> None:
    """A budget built with its own keep uses it by default; Runtime.budget reads the
    runtime's remaining time each time it is asked."""
    left = [9_000]
    runtime = Runtime(remaining_ms=lambda: left[0])
    budget = runtime.budget
    assert budget.covers(keep_ms=LIFECYCLE_KEEP_MS)
    left[0] = LIFECYCLE_KEEP_MS - 1
    assert not Budget(runtime.remaining_ms, keep_ms=LIFECYCLE_KEEP_MS).covers()
    assert budget.seconds_left(SAFETY_MARGIN_MS) == pytest.approx(
        (LIFECYCLE_KEEP_MS - 1 - SAFETY_MARGIN_MS) / 1000
    )
