"""ECS state: servers, their attached disks (from the EVS volumes' attachments), stops.

A stop is asynchronous (PLATFORM.md 10.4, ecs_02_0303): the server stays `ACTIVE` once the
stop is requested and shows `SHUTOFF` only later, or never when the stop fails. The fake
models it with `EcsBackend.stop_server(server_id, after)`: `after` seconds of the fake clock
from now (0 = at once), or None for a stop that fails (ACTIVE forever). A seed sets the same
with a server's `"stops_after"` key (seconds; null or absent = not stopping), and server mode
with `POST /_fake/servers/{server_id}/stop` and body `{"after": <seconds>|null}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

SYSTEM_DEVICES = ("/dev/vda", "/dev/sda", "/dev/xvda")


@dataclass
class Server:
    """One ECS instance; its disks are the volumes whose attachments name it."""

    id: str
    name: str = ""
    tags: list[str] = field(default_factory=list)
    status: str = "ACTIVE"
    metadata: dict[str, str] = field(default_factory=dict)
    stop_requested_at: datetime | None = None
    stops_after: float | None = None


class EcsBackend:
    """ECS state for one project and region."""

    def __init__(self, cloud: FakeCloud, region: str, project_id: str) -> None:
        self._cloud = cloud
        self.region = region
        self.project_id = project_id
        self.servers: dict[str, Server] = {}

    def reset(self) -> None:
        """Forget every server."""
        self.servers.clear()

    def add_server(
        self,
        id: str,
        name: str = "",
        tags: list[str] | None = None,
        status: str = "ACTIVE",
        metadata: dict[str, str] | None = None,
        stops_after: float | None = None,
    ) -> Server:
        """Create (or replace) a server; tags are `key=value` strings as ECS shows them.

        `stops_after` seeds a stop requested now that completes after that many seconds of
        the fake clock (see stop_server); None means the server is not stopping.
        """
        server = Server(
            id=id, name=name, tags=list(tags or []), status=status, metadata=dict(metadata or {})
        )
        with self._cloud.lock:
            if stops_after is not None and status != "ACTIVE":
                raise ValueError(f"server {id!r}: only an ACTIVE server can be stopping")
            if stops_after is not None and stops_after < 0:
                raise ValueError(f"server {id!r}: stops_after must be >= 0 seconds")
            self.servers[id] = server
            if stops_after is not None:
                self.stop_server(id, stops_after)
        return server

    def stop_server(self, server_id: str, after: float | None) -> Server:
        """Request a stop of an ACTIVE server: SHUTOFF once `after` seconds of the fake clock
        have passed (0 = at once), or never when `after` is None (the stop fails).

        The server reads ACTIVE until then (PLATFORM.md 10.4). KeyError for an unknown
        server, ValueError for a negative delay or a server that is not ACTIVE.
        """
        if after is not None and after < 0:
            raise ValueError("after must be >= 0 seconds, or None for a stop that fails")
        with self._cloud.lock:
            server = self.servers[server_id]
            self.sweep()
            if server.status != "ACTIVE":
                raise ValueError(f"server {server_id!r} is {server.status}, not ACTIVE")
            server.stop_requested_at = self._cloud.now()
            server.stops_after = None if after is None else float(after)
            self.sweep()
        return server

    def sweep(self) -> None:
        """Apply the fake clock: servers whose stop has completed become SHUTOFF."""
        with self._cloud.lock:
            now = self._cloud.now()
            for server in self.servers.values():
                started, after = server.stop_requested_at, server.stops_after
                if started is None or after is None:
                    continue
                if (now - started).total_seconds() >= after:
                    server.status = "SHUTOFF"
                    server.stop_requested_at = server.stops_after = None

    def attached(self, server_id: str) -> list[tuple[str, str, bool]]:
        """(volume ID, device, bootable) for each volume attached to the server."""
        out = []
        for volume in self._cloud.evs._volumes.values():
            for att in volume.attachments:
                if att.get("server_id") == server_id:
                    out.append((volume.id, att.get("device", ""), volume.bootable))
        return out

    def server_dict(self, server: Server) -> dict[str, Any]:
        """The JSON view of a server.

        `bootIndex` is "0" for a bootable volume on /dev/vda, /dev/sda or /dev/xvda (the system
        disk) and null for every other disk. `status` is the one at the fake clock's time.
        """
        self.sweep()
        volumes = [
            {
                "id": vid,
                "device": device,
                "bootIndex": "0" if bootable and device in SYSTEM_DEVICES else None,
                "delete_on_termination": "false",
            }
            for vid, device, bootable in self.attached(server.id)
        ]
        return {
            "id": server.id,
            "name": server.name,
            "status": server.status,
            "tags": list(server.tags),
            "metadata": dict(server.metadata),
            "tenant_id": self.project_id,
            "OS-EXT-AZ:availability_zone": f"{self.region}a",
            "os-extended-volumes:volumes_attached": volumes,
        }
