"""The backend registry: each service's state keyed by service, region and project.

Like moto's backends per account and region: the home region holds one backend per service,
`FakeCloud.add_region` adds an IMS backend for another region's project, and account-wide
state (the IMS jobs, which span regions) sits under the region GLOBAL. `reset()` resets all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar

GLOBAL = "global"
Key = tuple[str, str, str]


class Backend(Protocol):
    """What every backend offers the registry."""

    def reset(self) -> None:
        """Forget the state (keep the configuration)."""


B = TypeVar("B", bound=Backend)


class Backends:
    """Backends by (service, region, project ID)."""

    def __init__(self) -> None:
        self._items: dict[Key, Backend] = {}

    def add(self, service: str, region: str, project_id: str, backend: B) -> B:
        """Register `backend`; ValueError when that key already has one."""
        key = (service, region, project_id)
        if key in self._items:
            raise ValueError(f"{service} already has a backend for {region}/{project_id}")
        self._items[key] = backend
        return backend

    def get(self, service: str, region: str, project_id: str, kind: type[B]) -> B:
        """The backend under that key, of type `kind`; KeyError when there is none."""
        backend = self._items[(service, region, project_id)]
        if not isinstance(backend, kind):
            raise TypeError(f"{service} backend is a {type(backend).__name__}, not {kind}")
        return backend

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[Key]:
        return iter(self._items)

    def reset(self) -> None:
        """Reset every backend."""
        for backend in self._items.values():
            backend.reset()
