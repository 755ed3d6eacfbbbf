"""Work passed to an asynchronous invocation of this same function: the orders and server
waits the time budget did not cover (a continuation), a chat job, and this function's URN.
What cannot be handed on ends ``failed`` here, never dropped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from function.budget import SAFETY_MARGIN_MS
from function.config import Settings
from function.errors import ConfigError, ExportError, HandOffFailed
from function.results import summarize
from function.runtime import Runtime
from function.work import ExportOrder, Exports, HandOff, ImageQuery, Outcome, PlanRequest

if TYPE_CHECKING:
    from function.cloud.client import CloudClient
    from function.pipeline import Connection

log = structlog.get_logger("evs_export")


def hand_on(
    work: Exports,
    deferred: list[ExportOrder],
    client: CloudClient,
    settings: Settings,
    runtime: Runtime,
    notes: list[str],
    waits: Sequence[PlanRequest] = (),
    waiting: Sequence[Outcome] = (),
    margin_ms: float | None = None,
) -> dict[int, Outcome]:
    """Hand the orders the budget did not cover, and the servers still stopping (``waits``,
    whose disks are ``waiting``), to an asynchronous invocation of this function; if that is
    impossible they end ``failed`` here, never silently dropped. Keyed by ``id`` of the
    order or waiting outcome they replace. ``margin_ms`` defaults to the client's
    ``SAFETY_MARGIN_MS``."""
    from function.cloud.functiongraph import FunctionGraphClient
    from function.triggers import continuation

    error: HandOffFailed | None = None
    waiting_chain = bool(waits) or any(p.stop_deadline is not None for p in work.plans)
    limit = continuation.MAX_WAIT_HOPS if waiting_chain else continuation.MAX_HOPS
    if work.hop >= limit:
        error = HandOffFailed(
            "HopLimitReached",
            f"the time budget ran out {limit} invocations in a row; "
            "raise the function's timeout or narrow the selection",
        )
    else:
        try:
            urn = function_urn(settings, runtime)
            event = continuation.build(work, deferred, waits)
            margin = SAFETY_MARGIN_MS if margin_ms is None else margin_ms
            request_id = FunctionGraphClient(client).invoke_async(urn, event, margin)
        except ExportError as exc:
            error = HandOffFailed(
                "ContinuationFailed", f"could not hand the rest on: {exc.message}"
            )
        else:
            if deferred:
                notes.append(
                    f"{len(deferred)} volume(s) handed to asynchronous invocation {request_id}"
                )
            servers = sum(len(p.server_ids) for p in waits)
            if servers:
                notes.append(
                    f"{servers} server(s) not yet SHUTOFF: waiting handed to asynchronous "
                    f"invocation {request_id}"
                )
            log.info(
                "work handed on",
                deferred=len(deferred),
                waiting_servers=servers,
                async_request_id=request_id,
            )
            return {}
    log.error(
        "deferred work not handed on",
        error=error.as_dict(),
        volumes=len(deferred) + len(waiting),
    )
    failed = {
        id(o): Outcome("failed", o.volume_id, o.image_name, error=error, order=o) for o in deferred
    }
    failed.update(
        {id(o): Outcome("failed", o.volume_id, error=error, extra=o.extra) for o in waiting}
    )
    return failed


def side_request(
    work: HandOff | ImageQuery, settings: Settings, runtime: Runtime, connect: Connection
) -> dict[str, Any]:
    """Work that is not an export: hand the work to an asynchronous invocation of this
    function, or read one image's status."""
    result: dict[str, Any] = {"results": [], "summary": summarize([])}
    key = "handoff" if isinstance(work, HandOff) else "image"
    try:
        client = connect()
        if isinstance(work, HandOff):
            from function.cloud.functiongraph import FunctionGraphClient

            urn = function_urn(settings, runtime)
            request_id = FunctionGraphClient(client).invoke_async(urn, work.event)
            result["handoff"] = {"request_id": request_id, "function_urn": urn}
            log.info("work handed to an asynchronous invocation", async_request_id=request_id)
        else:
            from function.cloud.ims import ImsClient

            result["image"] = ImsClient(client).get_image(work.image_id)
    except ExportError as exc:
        log.warning("side request failed", error=exc.as_dict())
        result[key] = {"error": exc.as_dict()} if key == "handoff" else None
        result["error"] = exc.as_dict()
    return result


def function_urn(settings: Settings, runtime: Runtime) -> str:
    """This function's URN, for invoking itself asynchronously."""
    if settings.function_urn:
        return settings.function_urn
    region, project = settings.region, settings.require_project()
    if region is None:
        raise ConfigError(
            "FUNCTION_URN", "set FUNCTION_URN (or REGION) so the function can invoke itself"
        )
    name, version = runtime.function_name, runtime.function_version
    return f"urn:fss:{region}:{project}:function:default:{name}:{version}"
