"""The exporter's reserve (function/exporter.py ``Reserve``) and the continuation's carried
order state (function/triggers/continuation.py): what is kept back, and what travels."""

from __future__ import annotations

from typing import Any

import pytest

from function.exporter import Reserve
from function.model import ACTION_KEY, UploadOptions
from function.triggers import continuation
from function.work import ExportOrder, Exports
from tests.unit.fakes import VOLUME, make_runtime, make_settings


def order(**extra: Any) -> ExportOrder:
    return ExportOrder(VOLUME, UploadOptions("img-1"), **extra)


def test_reserve_is_the_handoff_and_return_without_sinks() -> None:
    """With no sink configured the reserve is the hand-off (two request costs) plus the
    return margin, priced at the measured request cost."""
    assert Reserve(lambda: 250.0, events=60).ms() == Reserve.RETURN_MS + 2 * 250.0


def test_reserve_grows_with_deliveries() -> None:
    """Each event delivered to a webhook and SMN, eight at a time, and one Slack message add
    their request costs to the reserve."""
    reserve = Reserve(lambda: 100.0, events=60, per_event=2, batches=1, max_concurrency=8)
    assert reserve.ms() == Reserve.RETURN_MS + (2 + 15 + 1) * 100.0


def test_reserve_follows_the_measured_cost() -> None:
    """The reserve is recomputed from the request cost each time it is asked for."""
    cost = [1000.0]
    reserve = Reserve(lambda: cost[0])
    first = reserve.ms()
    cost[0] = 50.0
    assert reserve.ms() < first


def test_continuation_carries_attempts_and_ambiguity() -> None:
    """An order handed on after an ambiguous attempt carries ``attempts`` and
    ``ambiguous``, and the next invocation reads them back."""
    work = Exports("direct", "corr-1")
    event = continuation.build(work, [order(attempts=2, ambiguous=True)])
    [raw] = event[continuation.KEY]["orders"]
    assert raw["attempts"] == 2 and raw["ambiguous"] is True
    parsed = continuation.parse(event, make_settings(), make_runtime())
    [item] = parsed.items
    assert isinstance(item, ExportOrder)
    assert (item.attempts, item.ambiguous) == (2, True)


def test_fresh_order_keeps_the_earlier_event_shape() -> None:
    """A fresh order is written exactly as earlier versions wrote it (no new keys)."""
    event = continuation.build(Exports("direct", "corr-1"), [order()])
    [raw] = event[continuation.KEY]["orders"]
    assert set(raw) == {"volume_id", "body", "policy", "server_id", "dry_run", "keep"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, (0, False)),
        ({"attempts": "2", "ambiguous": "yes"}, (0, False)),
        ({"attempts": True, "ambiguous": 1}, (0, False)),
        ({"attempts": -1}, (0, False)),
        ({"attempts": 3, "ambiguous": True}, (3, True)),
    ],
)
def test_continuation_reads_earlier_and_odd_orders(
    raw: dict[str, Any], expected: tuple[int, bool]
) -> None:
    """An order without the new keys (an earlier version's event) reads as fresh, and
    malformed values are ignored rather than trusted."""
    event = {
        continuation.KEY: {
            "hop": 1,
            "trigger": "direct",
            "orders": [{"volume_id": VOLUME, "body": {ACTION_KEY: {"image_name": "x"}}, **raw}],
        }
    }
    [item] = continuation.parse(event, make_settings(), make_runtime()).items
    assert isinstance(item, ExportOrder)
    assert (item.attempts, item.ambiguous) == expected
