"""FunctionGraph entry point: ``handler.handler(event, context)``. It never raises."""

from __future__ import annotations

import gc
import json
import sys
import traceback
import uuid
from datetime import datetime, timezone
from typing import Any

_COLD = [True]


def handler(event: Any, context: Any) -> dict[str, Any]:
    cold, _COLD[0] = _COLD[0], False
    try:
        if cold:
            _import_app()
        from function.app import invoke

        return invoke(event, context, cold_start=cold)
    except Exception as exc:  # the last line of defence: report, never raise
        return _crash_result(exc)


def _import_app() -> None:
    """The first import of the function, without the cyclic garbage collector.

    Imports allocate only long-lived objects (modules, classes, functions), yet they set off
    collections that walk everything allocated so far (about a tenth of a cold start). After
    the import those objects are moved out of the collector's generations (``gc.freeze``),
    so later collections, warm invocations' included, no longer walk them either.
    """
    if "function.app" in sys.modules:  # imported already (a test, a second cold flag)
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        import function.app  # noqa: F401
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _crash_result(exc: Exception) -> dict[str, Any]:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" at {where[0].name}:{where[0].lineno}" if where else ""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "urn:fss:local:function:evs-export",
        "type": "evs.export.failed",
        "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {
            "volume_id": None,
            "error": {"code": "InternalError", "message": f"unexpected {type(exc).__name__}{at}"},
            "trigger": "direct",
            "correlation_id": None,
        },
    }
    line = {
        "level": "ERROR",
        "timestamp": event["time"],
        "service": "evs-export",
        "message": "handler crashed",
        "cold_start": None,
        "function_name": None,
        "function_version": None,
        "request_id": None,
        "correlation_id": None,
        "error": event["data"]["error"],
    }
    print(json.dumps(line), flush=True)
    return {
        "results": [event],
        "summary": {"accepted": 0, "rejected": 0, "failed": 1, "skipped": 0},
    }
