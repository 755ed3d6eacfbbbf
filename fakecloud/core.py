"""FakeCloud: the state of every service, the request log, and the one dispatch path.

Both adapters (the `responses` mock and the HTTP server) go through `take_fault` then
`process`, so faults, signature checks and routing behave the same in either mode.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fakecloud import control, gateway, iam, snapshot
from fakecloud.backends import GLOBAL, Backends
from fakecloud.base import ApiError, Reply, Request, Route, json_reply, utc
from fakecloud.ecs.models import EcsBackend
from fakecloud.evs.models import EvsBackend
from fakecloud.faults import Fault, Faults
from fakecloud.functiongraph.models import FunctionGraphBackend
from fakecloud.ims.copy_models import Jobs
from fakecloud.ims.models import ImsBackend
from fakecloud.services import REGISTRY, SERVICES
from fakecloud.smn.models import SmnBackend

__all__ = ["SERVICES", "ConnectionReset", "FakeCloud", "RecordedRequest"]

CONTROL_PREFIX = control.PREFIX
_HOST_RE = re.compile(
    r"^(?P<service>[a-z]+)\.(?P<region>[a-z0-9-]+)\.myhuaweicloud\.(?:com|eu)(?::\d+)?$"
)
JOBS = "ims-jobs"  # the account's IMS jobs (they span regions), under the region GLOBAL


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


class FakeCloud:
    """The fake Huawei Cloud for one account: project, region, credentials and state.

    The home region serves every service; `add_region` adds IMS in further regions, each with
    its own project (same credentials), for cross-region replication (fakecloud.ims.copy_models).
    Every backend lives in `backends`, keyed by service, region and project.
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
        self.backends = Backends()
        # Each served region's project: the home region's first, then add_region's.
        self._projects: dict[str, str] = {region: project_id}
        for name, service in REGISTRY.items():
            self.backends.add(name, region, project_id, service.backend(self, region, project_id))
        self.backends.add(JOBS, GLOBAL, project_id, Jobs(self))
        self.iam_policy: iam.Policy | None = None
        self.set_iam_policy(iam_policy)

    # -- state ---------------------------------------------------------------------------

    @property
    def evs(self) -> EvsBackend:
        """The home region's EVS."""
        return self.backends.get("evs", self.region, self.project_id, EvsBackend)

    @property
    def ecs(self) -> EcsBackend:
        """The home region's ECS."""
        return self.backends.get("ecs", self.region, self.project_id, EcsBackend)

    @property
    def ims(self) -> ImsBackend:
        """The home region's IMS."""
        return self.backends.get("ims", self.region, self.project_id, ImsBackend)

    @property
    def smn(self) -> SmnBackend:
        """The home region's SMN."""
        return self.backends.get("smn", self.region, self.project_id, SmnBackend)

    @property
    def functiongraph(self) -> FunctionGraphBackend:
        """The home region's FunctionGraph."""
        return self.backends.get(
            "functiongraph", self.region, self.project_id, FunctionGraphBackend
        )

    @property
    def jobs(self) -> Jobs:
        """Every IMS job of the account, and how replications finish."""
        return self.backends.get(JOBS, GLOBAL, self.project_id, Jobs)

    @property
    def project_name(self) -> str:
        """The home project's name (default: the region ID)."""
        return self._project_name or self.region

    def add_region(
        self, region: str, project_id: str, project_name: str | None = None
    ) -> ImsBackend:
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
            if region in self._projects:
                existing = self.ims_in(region)
                if existing.project_id != project_id or (
                    project_name is not None and existing.project_name != project_name
                ):
                    raise ValueError(f"region {region} already has project {existing.project_id}")
                return existing
            if project_id in self._projects.values():
                raise ValueError(f"project {project_id} already belongs to another region")
            backend = ImsBackend(self, region, project_id, project_name)
            self.backends.add("ims", region, project_id, backend)
            self._projects[region] = project_id
            return backend

    @property
    def regions(self) -> dict[str, ImsBackend]:
        """Each region's IMS backend, the home region first."""
        return {region: self.ims_in(region) for region in self._projects}

    def ims_in(self, region: str | None) -> ImsBackend:
        """The IMS backend of `region` (None: home); KeyError for a region not served."""
        region = self.region if region is None else region
        return self.backends.get("ims", region, self._projects[region], ImsBackend)

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
            self.backends.reset()
            self.faults.clear()
            self.requests.clear()

    def set_progress(
        self, mode: str = "immediate", after: float = 0, outcome: str = "active"
    ) -> None:
        """Shortcut for `ims.set_progress`."""
        self.ims.set_progress(mode, after, outcome)

    def load_seed(self, seed: Mapping[str, Any]) -> None:
        """Add the volumes, servers and images (and `regions`) of a seed (fakecloud.snapshot)."""
        snapshot.load_seed(self, seed)

    def state(self) -> dict[str, Any]:
        """A JSON-ready dump of everything (reads here do not count as image polls)."""
        return snapshot.dump_state(self)

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
            return control.dispatch(self, req)
        service, target = self._route(req)
        if fault is not None and fault.status is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            reply = json_reply(fault.status, fault.default_body(), req, **extra)
            self.record(req, reply.status, service, "status")
            return reply
        if fault is not None and fault.reset == "before":
            self.record(req, 0, service, "reset-before")
            return Reply(0, {}, b"", reset="before")
        with self.lock:
            reply = self._serve(req, service, target)
            if fault is not None and fault.reset == "after":
                self.record(req, reply.status, service, "reset-after")
                return Reply(reply.status, reply.headers, reply.body, reset="after")
            label = "latency" if fault is not None and fault.latency > 0 else None
            self.record(req, reply.status, service, label)
        return reply

    def _route(self, req: Request) -> tuple[str, tuple[Route, re.Match[str]] | None]:
        """The service and route; sets `req.region` (a region-bound server's, the host's, or
        home). A region serves the services it has backends for (outside home, only IMS); an
        unknown region has no APIs."""
        host = _HOST_RE.match(req.host.lower())
        host_service = host.group("service") if host else None
        if req.region is None:
            req.region = host.group("region") if host else self.region
        for service, routes in SERVICES.items():
            if host_service in SERVICES and host_service != service:
                continue
            for row in routes:
                m = row.pattern.match(req.path)
                if m is not None and row.method == req.method:
                    project = self._projects.get(req.region, "")
                    if (service, req.region, project) not in self.backends:
                        return service, None
                    return service, (row, m)
        return host_service or "unknown", None

    def _serve(
        self, req: Request, service: str, target: tuple[Route, re.Match[str]] | None
    ) -> Reply:
        """The gateway's checks (fakecloud.gateway), then the timed state, then the handler."""
        if target is None:
            return gateway.no_such_api(req)
        row, m = target
        refusal = (
            gateway.authenticate(self, req, m)
            or gateway.check_project(req, m, self._projects[req.region or self.region])
            or gateway.authorize(self, req, service, row)
        )
        if refusal is not None:
            return refusal
        self.sweep()
        try:
            return row.handler(self, req, m)
        except ApiError as exc:
            return json_reply(exc.status, exc.body, req)

    def record(self, req: Request, status: int, service: str, fault: str | None) -> None:
        """Append one request and its answer to the log."""
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
