"""The services the fake serves, in routing order: route table, backend class, IAM 403 body."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fakecloud import ecs, evs, functiongraph, ims, smn
from fakecloud.base import Route

if TYPE_CHECKING:
    from fakecloud.backends import Backend
    from fakecloud.core import FakeCloud


@dataclass(frozen=True)
class Service:
    """One service: its routes (with IAM actions), how to build a backend for a region's
    project, and its 403 body for a policy denial (message, request ID)."""

    name: str
    routes: list[Route]
    backend: Callable[[FakeCloud, str, str], Backend]
    denied: Callable[[str, str], dict[str, Any]]


REGISTRY: dict[str, Service] = {
    s.name: s
    for s in (
        Service("evs", evs.ROUTES, evs.EvsBackend, evs.denied),
        Service("ecs", ecs.ROUTES, ecs.EcsBackend, ecs.denied),
        Service("ims", ims.ROUTES, ims.ImsBackend, ims.denied),
        Service("smn", smn.ROUTES, smn.SmnBackend, smn.denied),
        Service(
            "functiongraph",
            functiongraph.ROUTES,
            functiongraph.FunctionGraphBackend,
            functiongraph.denied,
        ),
    )
}
# Each service's route table, by service name (the mock intercepts these services' hosts).
SERVICES: dict[str, list[Route]] = {name: s.routes for name, s in REGISTRY.items()}
