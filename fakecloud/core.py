"""FakeCloud: the state of every service, the request log, and the one dispatch path.

Both adapters (the `responses` mock and the HTTP server) go through `take_fault` then
`process`, so faults, signature checks and routing behave the same in either mode.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from fakecloud import ecs, evs, functiongraph, iam, ims, imscopy, smn
from fakecloud.auth import AuthError, verify
from fakecloud.base import (
    ApiError,
    BadJson,
    Handler,
    Reply,
    Request,
    Route,
    json_reply,
    parse_json,
    parse_time,
    utc,
)
from fakecloud.faults import Fault, Faults

SERVICES: dict[str, list[Route]] = {
    "evs": evs.ROUTES,
    "ecs": ecs.ROUTES,
    "ims": [*ims.ROUTES, *imscopy.ROUTES],
    "smn": smn.ROUTES,
    "functiongraph": functiongraph.ROUTES,
}
CONTROL_PREFIX = "/_fake/"
_STOP_ROUTE = re.compile(r"^servers/(?P<server_id>[^/]+)/stop$")
_HOST_RE = re.compile(
    r"^(?P<service>[a-z]+)\.(?P<region>[a-z0-9-]+)\.myhuaweicloud\.(?:com|eu)(?::\d+)?$"
)


class ConnectionReset(ConnectionError):
    """A fault dropped the connection; `when` is "before" or "after" processing."""

    def __init__(self, when: str) -> None:
        super().__init__(f"connection reset by fakecloud ({when} processing)")
        self.when = when


@dataclass
class RecordedRequest:
    """One request the fake received and what it answered.

    `status` is 0 when a fault reset the connection before processing; for a reset after
    processing it is the status that was not sent. `fault` names the fault applied, if any:
    "status", "reset-before", "reset-after" or "latency".
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int
    service: str
    fault: str | None = None
    request_id: str = ""
    time: datetime | None = None

    def json(self) -> Any:
        """The body decoded as JSON (None when empty)."""
        import json

        return json.loads(self.body) if self.body else None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _members(backend: ims.ImsBackend) -> dict[str, dict[str, str]]:
    """Image ID -> {member project ID -> status}, for images shared with anyone."""
    return {i.id: dict(i.members) for i in backend._images.values() if i.members}


class FakeCloud:
    """The fake Huawei Cloud for one account: project, region, credentials and state.

    The home region serves every service; `add_region` adds IMS in further regions, each with
    its own project (same credentials), for cross-region replication (fakecloud.imscopy).
    """

    def __init__(
        self,
        ak: str = "AKFAKECLOUD",
        sk: str = "SKFAKECLOUD",
        project_id: str = "0123456789abcdef0123456789abcdef",
        region: str = "cn-north-4",
        security_token: str | None = None,
        clock: Callable[[], datetime] | None = None,
        iam_policy: Mapping[str, Any] | None = None,
        project_name: str | None = None,
    ) -> None:
        self.ak, self.sk = ak, sk
        self.project_id = project_id
        self.region = region
        # Huawei Cloud names a region's default project after the region ID.
        self._project_name = project_name
        self.security_token = security_token
        self.clock: Callable[[], datetime] = clock or _now
        self.lock = threading.RLock()
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.evs = evs.EvsBackend(self)
        self.ecs = ecs.EcsBackend(self)
        self.ims = ims.ImsBackend(self)
        self.smn = smn.SmnBackend(self)
        self.functiongraph = functiongraph.FunctionGraphBackend(self)
        self._other_ims: dict[str, ims.ImsBackend] = {}
        self.jobs = imscopy.Jobs(self)
        self.iam_policy: iam.Policy | None = None
        self.set_iam_policy(iam_policy)

    # -- state ---------------------------------------------------------------------------

    @property
    def project_name(self) -> str:
        """The home project's name (default: the region ID)."""
        return self._project_name or self.region

    def add_region(
        self, region: str, project_id: str, project_name: str | None = None
    ) -> ims.ImsBackend:
        """Serve IMS in `region` for `project_id` (named `project_name`, default the region ID).

        Idempotent for the same project; ValueError for the home region or another project.
        Regions are account configuration: `reset()` keeps them (and empties them).
        """
        if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)+", region):
            raise ValueError(f"{region!r} is not a region ID such as cn-east-3")
        if not isinstance(project_id, str) or not project_id:
            raise ValueError("project_id must be a non-empty string")
        with self.lock:
            if region == self.region:
                raise ValueError(f"{region} is the home region")
            existing = self._other_ims.get(region)
            if existing is not None:
                if existing.project_id != project_id or (
                    project_name is not None and existing.project_name != project_name
                ):
                    raise ValueError(f"region {region} already has project {existing.project_id}")
                return existing
            if any(b.project_id == project_id for b in self.regions.values()):
                raise ValueError(f"project {project_id} already belongs to another region")
            backend = ims.ImsBackend(self, region, project_id, project_name)
            self._other_ims[region] = backend
            return backend

    @property
    def regions(self) -> dict[str, ims.ImsBackend]:
        """Each region's IMS backend, the home region first."""
        return {self.region: self.ims, **self._other_ims}

    def ims_in(self, region: str | None) -> ims.ImsBackend:
        """The IMS backend of `region` (None: home); KeyError for a region not served."""
        if region is None or region == self.region:
            return self.ims
        return self._other_ims[region]

    def set_copy_progress(
        self, mode: str = "immediate", after: float = 0, outcome: str = "SUCCESS"
    ) -> None:
        """Shortcut for `jobs.set_progress`: how later cross-region replications finish."""
        self.jobs.set_progress(mode, after, outcome)

    def sweep(self) -> None:
        """Apply the fake clock to timed exports and jobs."""
        with self.lock:
            for backend in self.regions.values():
                backend.sweep()
            self.jobs.sweep()

    def now(self) -> datetime:
        """The fake clock's time, aware UTC."""
        return utc(self.clock())

    def set_iam_policy(self, document: Mapping[str, Any] | None) -> None:
        """Enforce the IAM custom policy `document` (see fakecloud.iam), or stop with None.

        ValueError for a document the fake cannot evaluate. Like the credentials, the policy
        is account configuration: `reset()` keeps it.
        """
        policy = None if document is None else iam.Policy(document)
        with self.lock:
            self.iam_policy = policy

    def reset(self) -> None:
        """Clear all state, faults, progress settings and the request log (not the policy)."""
        with self.lock:
            for backend in (self.evs, self.ecs, self.smn, self.functiongraph):
                backend.reset()
            for region_ims in self.regions.values():
                region_ims.reset()
            self.jobs.reset()
            self.faults.clear()
            self.requests.clear()

    def set_progress(
        self, mode: str = "immediate", after: float = 0, outcome: str = "active"
    ) -> None:
        """Shortcut for `ims.set_progress`."""
        self.ims.set_progress(mode, after, outcome)

    def load_seed(self, seed: Mapping[str, Any]) -> None:
        """Add the volumes, servers and images of a CONTRACT.md section 6 seed.

        `regions` (beyond CONTRACT.md) adds IMS regions: `{"cn-east-3": {"project_id": ...,
        "project_name": ... (default the region ID), "images": [...]}}`.
        """
        unknown = sorted(set(seed) - {"volumes", "servers", "images", "regions"})
        if unknown:
            raise ValueError(f"unknown seed keys {unknown!r}")
        regions = seed.get("regions", {})
        if not isinstance(regions, Mapping):
            raise ValueError("regions is an object keyed by region ID")
        for region, spec in regions.items():
            keys = {"project_id", "project_name", "images"}
            if not isinstance(spec, Mapping) or set(spec) - keys:
                raise ValueError(
                    f"region {region!r}: an object with project_id, project_name and images"
                )
        with self.lock:
            for region, spec in regions.items():
                backend = self.add_region(region, spec.get("project_id"), spec.get("project_name"))
                for i in spec.get("images", []):
                    self._seed_image(backend, i)
            for v in seed.get("volumes", []):
                bootable = v.get("bootable", False)
                self.evs.add_volume(
                    id=v["id"],
                    name=v.get("name", ""),
                    status=v.get("status", "available"),
                    size=int(v.get("size", 10)),
                    bootable=bootable in (True, "true", "True"),
                    tags=v.get("tags") or {},
                    attachments=v.get("attachments") or [],
                    volume_image_metadata=v.get("volume_image_metadata") or {},
                )
            for s in seed.get("servers", []):
                stops_after = s.get("stops_after")
                if stops_after is not None and (
                    isinstance(stops_after, bool) or not isinstance(stops_after, int | float)
                ):
                    raise ValueError(f"server {s['id']!r}: stops_after is seconds or null")
                self.ecs.add_server(
                    id=s["id"],
                    name=s.get("name", ""),
                    tags=s.get("tags") or [],
                    status=s.get("status", "ACTIVE"),
                    metadata=s.get("metadata") or {},
                    stops_after=None if stops_after is None else float(stops_after),
                )
            for i in seed.get("images", []):
                self._seed_image(self.ims, i)

    @staticmethod
    def _seed_image(backend: ims.ImsBackend, image: Mapping[str, Any]) -> None:
        item = dict(image)
        for key in ("created_at", "updated_at"):
            if isinstance(item.get(key), str):
                item[key] = parse_time(item[key])
        backend.add_image(**item)

    def state(self) -> dict[str, Any]:
        """A JSON-ready dump of everything (reads here do not count as image polls)."""
        with self.lock:
            self.sweep()
            return {
                "project_id": self.project_id,
                "project_name": self.project_name,
                "region": self.region,
                "volumes": [self.evs.volume_dict(v) for v in self.evs._volumes.values()],
                "servers": [self.ecs.server_dict(s) for s in self.ecs.servers.values()],
                "images": [self.ims.image_dict(i) for i in self.ims._images.values()],
                "members": _members(self.ims),
                "regions": {
                    region: {
                        "project_id": backend.project_id,
                        "project_name": backend.project_name,
                        "images": [backend.image_dict(i) for i in backend._images.values()],
                        "members": _members(backend),
                    }
                    for region, backend in self._other_ims.items()
                },
                "jobs": [self.jobs.job_dict(j) for j in self.jobs.jobs.values()],
                "copy_progress": self.jobs.progress(),
                "smn_messages": list(self.smn.messages),
                "invocations": list(self.functiongraph.invocations),
                "request_count": len(self.requests),
                "requests": [
                    {
                        "method": r.method,
                        "path": r.path,
                        "status": r.status,
                        "service": r.service,
                        "fault": r.fault,
                    }
                    for r in self.requests
                ],
                "faults": [f.to_dict() for f in self.faults],
                "iam_policy": None if self.iam_policy is None else self.iam_policy.document,
                "progress": {
                    "mode": self.ims.mode,
                    "after": self.ims.after,
                    "outcome": self.ims.outcome,
                    "outcomes": dict(self.ims.outcomes),
                },
            }

    # -- dispatch ------------------------------------------------------------------------

    def handle(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request; raises ConnectionReset where a fault drops the connection.

        Latency faults advance the clock when it has `advance` (a ManualClock), else sleep.
        """
        req = Request(method.upper(), url, {k.lower(): v for k, v in headers.items()}, body)
        fault = self.take_fault(req)
        if fault is not None and fault.latency > 0:
            self.wait(fault.latency)
        reply = self.process(req, fault)
        if reply.reset is not None:
            raise ConnectionReset(reply.reset)
        return reply.status, reply.headers, reply.body

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass: advance a manual clock, or really sleep."""
        advance = getattr(self.clock, "advance", None)
        if callable(advance):
            advance(seconds)
        else:
            time.sleep(seconds)

    def take_fault(self, req: Request) -> Fault | None:
        """The fault that applies to this request, if any (control routes have none)."""
        if req.path.startswith(CONTROL_PREFIX):
            return None
        return self.faults.take(req.method, req.path)

    def process(self, req: Request, fault: Fault | None = None) -> Reply:
        """Apply `fault` (from take_fault), then auth, routing and the service; log it."""
        if req.path.startswith(CONTROL_PREFIX):
            return self._control(req)
        service, target = self._route(req)
        if fault is not None and fault.status is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            reply = json_reply(fault.status, fault.default_body(), req, **extra)
            self._record(req, reply.status, service, "status")
            return reply
        if fault is not None and fault.reset == "before":
            self._record(req, 0, service, "reset-before")
            return Reply(0, {}, b"", reset="before")
        with self.lock:
            reply = self._serve(req, service, target)
            if fault is not None and fault.reset == "after":
                self._record(req, reply.status, service, "reset-after")
                return Reply(reply.status, reply.headers, reply.body, reset="after")
            label = "latency" if fault is not None and fault.latency > 0 else None
            self._record(req, reply.status, service, label)
        return reply

    def _route(self, req: Request) -> tuple[str, tuple[Handler, re.Match[str]] | None]:
        """The service and handler; sets `req.region` (a region-bound server's, the host's, or
        home). Outside the home region only IMS exists; an unknown region has no APIs."""
        host = _HOST_RE.match(req.host.lower())
        host_service = host.group("service") if host else None
        if req.region is None:
            req.region = host.group("region") if host else self.region
        for service, routes in SERVICES.items():
            if host_service in SERVICES and host_service != service:
                continue
            for method, pattern, handler in routes:
                m = pattern.match(req.path)
                if m is not None and method == req.method:
                    if req.region not in self.regions or (
                        req.region != self.region and service != "ims"
                    ):
                        return service, None
                    return service, (handler, m)
        return host_service or "unknown", None

    def _serve(
        self, req: Request, service: str, target: tuple[Handler, re.Match[str]] | None
    ) -> Reply:
        if target is None:
            body = {
                "error_code": "APIGW.0101",
                "error_msg": "The API does not exist or has not been published in the environment",
                "request_id": req.request_id,
            }
            return json_reply(404, body, req)
        handler, m = target
        try:
            verify(
                req.method,
                req.raw_path,
                req.query_pairs,
                req.headers,
                req.body,
                credentials={self.ak: self.sk},
                now=self.now(),
                security_token=self.security_token,
            )
            if "project" not in m.groupdict() and "x-project-id" not in req.headers:
                raise AuthError("X-Project-Id is required when the path has no project")
        except AuthError as exc:
            body = {
                "error_code": "APIGW.0301",
                "error_msg": f"Incorrect IAM authentication information: {exc}",
                "request_id": req.request_id,
            }
            return json_reply(401, body, req)
        header_project = req.headers.get("x-project-id")
        path_project = m.groupdict().get("project")
        region_project = self.ims_in(req.region).project_id
        for project in (header_project, path_project):
            if project is not None and project.strip() != region_project:
                body = {
                    "error_code": "Common.0018",
                    "error_msg": f"The project {project.strip()} does not match the token's"
                    " project.",
                }
                return json_reply(400, body, req)
        policy = self.iam_policy
        if policy is not None:  # after the signature and project checks (PLATFORM.md 10.6)
            action = iam.ACTIONS[handler]
            if not policy.allows(action):
                return json_reply(403, iam.denied_body(service, action, req.request_id), req)
        self.sweep()
        try:
            return handler(self, req, m)
        except ApiError as exc:
            return json_reply(exc.status, exc.body, req)

    def _record(self, req: Request, status: int, service: str, fault: str | None) -> None:
        with self.lock:
            self.requests.append(
                RecordedRequest(
                    method=req.method,
                    path=req.path,
                    query=req.query,
                    headers=dict(req.headers),
                    body=req.body,
                    status=status,
                    service=service,
                    fault=fault,
                    request_id=req.request_id,
                    time=self.now(),
                )
            )

    # -- control routes (unsigned) -------------------------------------------------------

    def _control(self, req: Request) -> Reply:
        name = req.path[len(CONTROL_PREFIX) :].rstrip("/")
        try:
            reply = self._control_action(name, req)
        except (BadJson, ValueError, TypeError, KeyError) as exc:
            reply = json_reply(400, {"error": f"{type(exc).__name__}: {exc}"}, req)
        if name != "reset":
            self._record(req, reply.status, "control", None)
        return reply

    def _control_action(self, name: str, req: Request) -> Reply:
        method = req.method
        if name == "reset" and method == "POST":
            self.reset()
            return json_reply(200, {"reset": True}, req)
        if name == "state" and method == "GET":
            return json_reply(200, self.state(), req)
        if name == "faults" and method == "POST":
            data = parse_json(req)
            allowed = {f.name for f in fields(Fault)} - {"hits"}
            if not isinstance(data, dict) or set(data) - allowed:
                raise ValueError(f"a fault is an object with keys from {sorted(allowed)}")
            fault = self.faults.add(Fault(**data))
            return json_reply(201, fault.to_dict(), req)
        if name == "faults" and method == "DELETE":
            self.faults.clear()
            return json_reply(200, {"faults": []}, req)
        if name == "faults" and method == "GET":
            return json_reply(200, {"faults": [f.to_dict() for f in self.faults]}, req)
        if name == "iam" and method == "POST":
            self.set_iam_policy(parse_json(req))
            return json_reply(200, {"iam_policy": self.state()["iam_policy"]}, req)
        if name == "iam" and method == "DELETE":
            self.set_iam_policy(None)
            return json_reply(200, {"iam_policy": None}, req)
        if name == "iam" and method == "GET":
            return json_reply(200, {"iam_policy": self.state()["iam_policy"]}, req)
        if name == "seed" and method == "POST":
            data = parse_json(req)
            if not isinstance(data, dict):
                raise ValueError("a seed is a JSON object")
            self.load_seed(data)
            return json_reply(200, {"seeded": True}, req)
        if name == "progress" and method == "POST":
            data = parse_json(req)
            if not isinstance(data, dict):
                raise ValueError("progress is a JSON object")
            outcomes = data.pop("outcomes", {})
            self.ims.set_progress(**data)
            for image_name, outcome in dict(outcomes).items():
                self.ims.set_outcome(image_name, outcome)
            return json_reply(200, self.state()["progress"], req)
        if name == "copy_progress" and method == "POST":
            data = parse_json(req)
            if not isinstance(data, dict) or set(data) - {"mode", "after", "outcome", "outcomes"}:
                raise ValueError("copy_progress is an object of mode, after, outcome, outcomes")
            outcomes = data.pop("outcomes", {})
            if not isinstance(outcomes, dict):
                raise ValueError("outcomes is an object of image name -> SUCCESS | FAIL")
            self.jobs.set_progress(**data)
            for image_name, outcome in outcomes.items():
                self.jobs.set_outcome(image_name, outcome)
            return json_reply(200, self.jobs.progress(), req)
        if name == "regions" and method == "POST":
            data = parse_json(req)
            if not isinstance(data, dict) or set(data) - {"region", "project_id", "project_name"}:
                raise ValueError('a region is {"region", "project_id", "project_name"?}')
            backend = self.add_region(data["region"], data["project_id"], data.get("project_name"))
            body = {"region": backend.region, "project_id": backend.project_id}
            return json_reply(200, {**body, "project_name": backend.project_name}, req)
        stop = _STOP_ROUTE.match(name)
        if stop is not None and method == "POST":
            data = parse_json(req)
            if not isinstance(data, dict) or set(data) != {"after"}:
                raise ValueError('a stop is {"after": <seconds> | null}')
            after = data["after"]
            if after is not None and (
                isinstance(after, bool) or not isinstance(after, int | float)
            ):
                raise ValueError("after must be a number of seconds or null")
            server = self.ecs.stop_server(stop.group("server_id"), after)
            return json_reply(200, {"server": self.ecs.server_dict(server)}, req)
        if name == "clock" and method == "POST":
            data = parse_json(req)
            advance = getattr(self.clock, "advance", None)
            if not callable(advance) or not isinstance(data, dict):
                raise ValueError("the clock is not a ManualClock, or the body is not an object")
            advance(float(data["advance"]))
            return json_reply(200, {"now": self.now().isoformat()}, req)
        return json_reply(404, {"error": f"no control route {method} /_fake/{name}"}, req)
