"""The follow-up of an invocation whose time ran out: this function invoked itself
asynchronously with the volumes it had not finished (``evs.export.deferred``), with the same
options, and with the servers it is still waiting for to stop (``waits``: CTS plans with
their deadline; ``function.stopwait``). Each order and wait is validated again; the chain
stops at ``MAX_HOPS`` (``MAX_WAIT_HOPS`` while it waits for servers, which its deadline
bounds too).

An order may also carry ``attempts`` (export attempts already spent on it, counted against
``max_attempts`` across the chain) and ``ambiguous: true`` (an earlier attempt may have made
its image: look for it by name before sending). Both are optional: events without them, as
earlier versions wrote, mean a fresh order.

Routing asks ``matches`` of every trigger ahead of the one that takes an event, so this
module stays cheap to import: the event's models (``continuation_event``) load when a
continuation is built or parsed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from function.triggers import CONTINUATION_KEY

if TYPE_CHECKING:
    from function.config import Settings
    from function.runtime import Runtime
    from function.work import ExportOrder, Exports, PlanRequest

NAME = "continuation"
KEY = CONTINUATION_KEY
MAX_HOPS = 8
MAX_WAIT_HOPS = 64


def matches(event: object) -> bool:
    return isinstance(event, Mapping) and KEY in event


def build(
    work: Exports, orders: Sequence[ExportOrder], waits: Sequence[PlanRequest] = ()
) -> dict[str, Any]:
    """The event that carries ``orders`` (and ``waits``) to the next invocation."""
    from function.triggers.continuation_event import build_event

    return build_event(work, orders, waits)


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Exports:
    from function.triggers.continuation_event import parse_event

    return parse_event(event, runtime)
