"""Waiting for stopped servers before their disks are exported (CTS ``stopServer``).

A ``stopServer`` trace is recorded when the stop is *requested* (PLATFORM.md 10.4); the server
is ``SHUTOFF`` seconds or minutes later, or never when the stop fails. An image taken before
then is crash-inconsistent, so a plan with a ``stop_deadline`` exports a server's disks only
once ECS reports it ``SHUTOFF``:

* each invocation polls the servers still waiting (one ``GET`` each, spaced ``POLL_FIRST_S``
  growing to ``POLL_MAX_S``) while its time budget covers another poll;
* as soon as one is ``SHUTOFF`` it is exported; the others wait on;
* a server still running when this invocation's budget runs short is handed, with the
  plan, to an asynchronous invocation (``evs.export.deferred`` for each of its disks);
* one still running at the deadline (``CTS_STOP_WAIT_SECONDS`` after the trace first
  arrived, default 10 minutes, across hand-offs) ends with one ``evs.export.skipped``,
  reason ``server_not_stopped``, per disk.

Servers that are not tagged for the trigger, or that cannot be read, are not waited for: the
planner reports them as it always does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import structlog

from function.budget import WAIT_KEEP_MS
from function.cloud.ecs import EcsClient
from function.cloud.records import Server
from function.errors import ExportError
from function.runtime import Runtime
from function.times import iso_z
from function.work import Outcome, PlanRequest

log = structlog.get_logger("evs_export.stopwait")

STOPPED = "SHUTOFF"
POLL_FIRST_S = 2.0
POLL_MAX_S = 15.0
POLL_GROWTH = 1.5
NOT_STOPPED = "server_not_stopped"


@dataclass
class StopWait:
    """What one invocation's wait came to."""

    ready: PlanRequest | None = None  # the servers now SHUTOFF (or not to wait for)
    waiting: PlanRequest | None = None  # the servers still running, to hand on
    outcomes: list[Outcome] = field(default_factory=list)  # skipped or deferred disks


def await_stopped(plan: PlanRequest, ecs: EcsClient, runtime: Runtime) -> StopWait:
    """Poll the plan's servers until one is ``SHUTOFF``, the budget runs short or the
    deadline passes (see the module docstring)."""
    assert plan.stop_deadline is not None
    pending: dict[str, Server] = {}
    ready: list[str] = []
    todo = list(dict.fromkeys(plan.server_ids))
    interval = POLL_FIRST_S
    while True:
        pending = {}
        for server_id in todo:
            server = _read(ecs, server_id, disks=False)  # polling needs the status only
            if server is None or not _waits_for(plan, server):
                ready.append(server_id)
            else:
                pending[server_id] = server
        todo = list(pending)
        if ready or not pending:
            break
        left_s = (plan.stop_deadline - runtime.clock()).total_seconds()
        if left_s <= 0:
            break
        nap = min(interval, left_s)
        if not runtime.budget.covers(nap * 1000, WAIT_KEEP_MS):
            break
        runtime.sleep(nap)
        interval = min(POLL_MAX_S, interval * POLL_GROWTH)

    result = StopWait()
    if ready:
        result.ready = replace(plan, server_ids=tuple(ready), stop_deadline=None)
    if not pending:
        return result
    expired = runtime.clock() >= plan.stop_deadline
    for polled in pending.values():
        server = _read(ecs, polled.id) or polled  # now its disks, for their outcomes
        log.info(
            "server not stopped yet",
            server_id=server.id,
            server_status=server.status,
            gave_up=expired,
        )
        result.outcomes.extend(_disk_outcomes(server, plan, expired))
    if not expired:
        result.waiting = replace(plan, server_ids=tuple(pending))
    return result


def _read(ecs: EcsClient, server_id: str, *, disks: bool = True) -> Server | None:
    """The server, or None when it cannot be read (the planner reports why)."""
    try:
        return ecs.get_server(server_id, disks=disks)
    except ExportError as exc:
        log.warning("could not read server", server_id=server_id, error=exc.as_dict())
        return None


def _waits_for(plan: PlanRequest, server: Server) -> bool:
    """Whether ``server`` is one of the plan's and not yet stopped."""
    if plan.server_tag is not None:
        key, value = plan.server_tag
        if server.tags.get(key) != value:
            return False  # not ours: the planner says it is left alone
    return server.status != STOPPED


def _disk_outcomes(server: Server, plan: PlanRequest, expired: bool) -> Sequence[Outcome]:
    """One outcome per disk of a server that is still running: skipped once the deadline
    has passed, else deferred to the invocation that waits on."""
    extra = {"server_id": server.id, "server_status": server.status or None}
    deadline = iso_z(plan.stop_deadline) if plan.stop_deadline else None
    if expired:
        return [
            Outcome("skipped", volume_id, reason=NOT_STOPPED, extra=extra)
            for volume_id in server.volume_ids
        ]
    return [
        Outcome("deferred", volume_id, extra={**extra, "waiting_until": deadline})
        for volume_id in server.volume_ids
    ]
