"""TIMER trigger: ``user_event`` is a JSON string holding a backup policy (CONTRACT §4).

Routing asks ``matches`` of every trigger ahead of the one that takes an event, so this
module stays cheap to import: the policy model (``timer_policy``) loads in ``parse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from function.errors import InvalidInput
from function.times import parse_time
from function.work import Exports, Rejection, Task, correlation_id

if TYPE_CHECKING:
    from function.config import Settings
    from function.runtime import Runtime

NAME = "timer"


def matches(event: object) -> bool:
    return isinstance(event, Mapping) and event.get("trigger_type") == "TIMER"


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Exports:
    from function.triggers.timer_policy import check_targets, parse_policy, plan_for

    name = event.get("trigger_name")
    correlation = correlation_id(
        f"timer:{name}:{event.get('time')}" if isinstance(name, str) else None,
        runtime.request_id,
    )
    try:
        policy = parse_policy(event.get("user_event"))
        check_targets(policy, settings)
        when = parse_time(event.get("time"), "time") or runtime.clock()
    except InvalidInput as exc:
        return Exports(NAME, correlation, items=(Rejection(None, exc),))
    # Every timer run reconciles and applies retention (function.lifecycle).
    tasks: frozenset[Task] = frozenset({"reconcile", "retention"})
    return Exports(NAME, correlation, plans=(plan_for(policy, when),), tasks=tasks)
