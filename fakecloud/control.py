"""Control routes (unsigned, `/_fake/...`): the table and its handlers, like moto_api's urls.

Server mode drives the fake through these: reset, state, faults, IAM policy, seed, export and
replication progress, regions, server stops and the manual clock. A body the route cannot use
is 400 `{"error"}`; an unknown route is 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, NamedTuple

from fakecloud.base import BadJson, Reply, Request, json_reply, parse_json
from fakecloud.faults import Fault

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

PREFIX = "/_fake/"
ControlHandler = Callable[["FakeCloud", Request, "re.Match[str]"], Reply]


class ControlRoute(NamedTuple):
    """One control route: method, the name after /_fake/ (a regex), handler."""

    method: str
    pattern: re.Pattern[str]
    handler: ControlHandler


def _object(req: Request, what: str) -> dict[str, Any]:
    data = parse_json(req)
    if not isinstance(data, dict):
        raise ValueError(f"{what} is a JSON object")
    return data


def reset(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/reset: clear all state (not regions nor the policy)."""
    cloud.reset()
    return json_reply(200, {"reset": True}, req)


def state(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /_fake/state: the JSON dump of everything."""
    return json_reply(200, cloud.state(), req)


def add_fault(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/faults: add a fault (keys of fakecloud.faults.Fault but `hits`)."""
    data = parse_json(req)
    allowed = {f.name for f in fields(Fault)} - {"hits"}
    if not isinstance(data, dict) or set(data) - allowed:
        raise ValueError(f"a fault is an object with keys from {sorted(allowed)}")
    fault = cloud.faults.add(Fault(**data))
    return json_reply(201, fault.to_dict(), req)


def clear_faults(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """DELETE /_fake/faults."""
    cloud.faults.clear()
    return json_reply(200, {"faults": []}, req)


def list_faults(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /_fake/faults."""
    return json_reply(200, {"faults": [f.to_dict() for f in cloud.faults]}, req)


def set_iam(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/iam: enforce the body as the IAM custom policy."""
    cloud.set_iam_policy(parse_json(req))
    return json_reply(200, {"iam_policy": cloud.state()["iam_policy"]}, req)


def clear_iam(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """DELETE /_fake/iam: stop enforcing a policy."""
    cloud.set_iam_policy(None)
    return json_reply(200, {"iam_policy": None}, req)


def show_iam(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /_fake/iam."""
    return json_reply(200, {"iam_policy": cloud.state()["iam_policy"]}, req)


def seed(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/seed: add a CONTRACT.md section 6 seed."""
    cloud.load_seed(_object(req, "a seed"))
    return json_reply(200, {"seeded": True}, req)


def progress(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/progress: how later exports finish (ImsBackend.set_progress, outcomes)."""
    data = _object(req, "progress")
    outcomes = data.pop("outcomes", {})
    cloud.ims.set_progress(**data)
    for image_name, outcome in dict(outcomes).items():
        cloud.ims.set_outcome(image_name, outcome)
    return json_reply(200, cloud.state()["progress"], req)


def copy_progress(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/copy_progress: how later replications finish (Jobs.set_progress)."""
    data = parse_json(req)
    if not isinstance(data, dict) or set(data) - {"mode", "after", "outcome", "outcomes"}:
        raise ValueError("copy_progress is an object of mode, after, outcome, outcomes")
    outcomes = data.pop("outcomes", {})
    if not isinstance(outcomes, dict):
        raise ValueError("outcomes is an object of image name -> SUCCESS | FAIL")
    cloud.jobs.set_progress(**data)
    for image_name, outcome in outcomes.items():
        cloud.jobs.set_outcome(image_name, outcome)
    return json_reply(200, cloud.jobs.progress(), req)


def add_region(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/regions: serve IMS in another region for its project."""
    data = parse_json(req)
    if not isinstance(data, dict) or set(data) - {"region", "project_id", "project_name"}:
        raise ValueError('a region is {"region", "project_id", "project_name"?}')
    backend = cloud.add_region(data["region"], data["project_id"], data.get("project_name"))
    body = {"region": backend.region, "project_id": backend.project_id}
    return json_reply(200, {**body, "project_name": backend.project_name}, req)


def stop_server(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/servers/{server_id}/stop `{"after": <seconds> | null}` (PLATFORM.md 10.4)."""
    data = parse_json(req)
    if not isinstance(data, dict) or set(data) != {"after"}:
        raise ValueError('a stop is {"after": <seconds> | null}')
    after = data["after"]
    if after is not None and (isinstance(after, bool) or not isinstance(after, int | float)):
        raise ValueError("after must be a number of seconds or null")
    server = cloud.ecs.stop_server(m.group("server_id"), after)
    return json_reply(200, {"server": cloud.ecs.server_dict(server)}, req)


def advance_clock(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /_fake/clock `{"advance": <seconds>}`: move a ManualClock forward."""
    data = parse_json(req)
    advance = getattr(cloud.clock, "advance", None)
    if not callable(advance) or not isinstance(data, dict):
        raise ValueError("the clock is not a ManualClock, or the body is not an object")
    advance(float(data["advance"]))
    return json_reply(200, {"now": cloud.now().isoformat()}, req)


def _route(method: str, name: str, handler: ControlHandler) -> ControlRoute:
    return ControlRoute(method, re.compile(f"^{name}$"), handler)


ROUTES: list[ControlRoute] = [
    _route("POST", "reset", reset),
    _route("GET", "state", state),
    _route("POST", "faults", add_fault),
    _route("DELETE", "faults", clear_faults),
    _route("GET", "faults", list_faults),
    _route("POST", "iam", set_iam),
    _route("DELETE", "iam", clear_iam),
    _route("GET", "iam", show_iam),
    _route("POST", "seed", seed),
    _route("POST", "progress", progress),
    _route("POST", "copy_progress", copy_progress),
    _route("POST", "regions", add_region),
    _route("POST", r"servers/(?P<server_id>[^/]+)/stop", stop_server),
    _route("POST", "clock", advance_clock),
]


def dispatch(cloud: FakeCloud, req: Request) -> Reply:
    """Answer a control request from the table; every one but `reset` is recorded."""
    name = req.path[len(PREFIX) :].rstrip("/")
    try:
        reply = _answer(cloud, req, name)
    except (BadJson, ValueError, TypeError, KeyError) as exc:
        reply = json_reply(400, {"error": f"{type(exc).__name__}: {exc}"}, req)
    if name != "reset":
        cloud.record(req, reply.status, "control", None)
    return reply


def _answer(cloud: FakeCloud, req: Request, name: str) -> Reply:
    for method, pattern, handler in ROUTES:
        m = pattern.match(name)
        if m is not None and method == req.method:
            return handler(cloud, req, m)
    return json_reply(404, {"error": f"no control route {req.method} /_fake/{name}"}, req)
