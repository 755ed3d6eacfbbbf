"""FunctionGraph HTTP: asynchronous invocations, recorded in the backend's `invocations`."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from fakecloud.base import BadJson, Reply, Request, Route, json_reply, parse_json, route
from fakecloud.functiongraph.errors import fgs_error

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,59}$")


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
        or parts[2] != cloud.functiongraph.region
        or parts[3] != cloud.functiongraph.project_id
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


# Method, path, handler and the IAM action each needs (PLATFORM.md 10.6).
ROUTES: list[Route] = [
    route(
        "POST",
        r"/v2/{project}/fgs/functions/(?P<function_urn>[^/]+)/invocations-async",
        invoke_async,
        "functiongraph:function:invokeAsync",  # [S]
    ),
]
