"""FunctionGraph: asynchronous invocations, recorded in `invocations`."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from fakecloud.base import ApiError, BadJson, Reply, Request, Route, json_reply, parse_json, route

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,59}$")


def fgs_error(status: int, code: str, message: str) -> ApiError:
    """FunctionGraph's `{"error_code", "error_msg"}` body."""
    return ApiError(status, {"error_code": code, "error_msg": message})


class FunctionGraphBackend:
    """Recorded asynchronous invocations."""

    def __init__(self, cloud: FakeCloud) -> None:
        self._cloud = cloud
        self.invocations: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forget every invocation."""
        self.invocations.clear()


def invoke_async(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v2/{project}/fgs/functions/{urn}/invocations-async: 202 with a request ID.

    The URN must be `urn:fss:<region>:<project>:function:<package>:<name>[:<version|alias>]`
    in this region and project, else 404 FSS.0404.
    """
    urn = m.group("function_urn")
    parts = urn.split(":")
    if (
        len(parts) not in (7, 8)
        or parts[:2] != ["urn", "fss"]
        or parts[2] != cloud.region
        or parts[3] != cloud.project_id
        or parts[4] != "function"
        or not _NAME.match(parts[6])
    ):
        name = parts[6] if len(parts) > 6 else urn
        raise fgs_error(404, "FSS.0404", f"function '{name}' not exist")
    try:
        event = parse_json(req)
    except BadJson as exc:
        raise fgs_error(400, "FSS.0400", str(exc)) from exc
    request_id = str(uuid.uuid4())
    cloud.functiongraph.invocations.append(
        {"function_urn": urn, "body": event, "request_id": request_id}
    )
    return json_reply(202, {"request_id": request_id}, req)


ROUTES: list[Route] = [
    route(
        "POST",
        r"/v2/{project}/fgs/functions/(?P<function_urn>[^/]+)/invocations-async",
        invoke_async,
    ),
]
