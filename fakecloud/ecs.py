"""ECS: servers and their attached disks (derived from the EVS volumes' attachments)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fakecloud.base import ApiError, Reply, Request, Route, json_reply, route

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


def not_found(server_id: str) -> ApiError:
    """Ecs.0114 for an unknown server."""
    message = f"Instance[{server_id}] could not be found."
    return ApiError(404, {"error": {"code": "Ecs.0114", "message": message}})


class EcsBackend:
    """ECS state for one project and region."""

    def __init__(self, cloud: FakeCloud) -> None:
        self._cloud = cloud
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
    ) -> Server:
        """Create (or replace) a server; tags are `key=value` strings as ECS shows them."""
        server = Server(
            id=id, name=name, tags=list(tags or []), status=status, metadata=dict(metadata or {})
        )
        with self._cloud.lock:
            self.servers[id] = server
        return server

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
        disk) and null for every other disk.
        """
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
            "tenant_id": self._cloud.project_id,
            "OS-EXT-AZ:availability_zone": f"{self._cloud.region}a",
            "os-extended-volumes:volumes_attached": volumes,
        }


def _server(cloud: FakeCloud, m: re.Match[str]) -> Server:
    server = cloud.ecs.servers.get(m.group("server_id"))
    if server is None:
        raise not_found(m.group("server_id"))
    return server


def show_server(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v1/{project}/cloudservers/{id}."""
    return json_reply(200, {"server": cloud.ecs.server_dict(_server(cloud, m))}, req)


def list_attachments(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v1/{project}/cloudservers/{id}/os-volume_attachments."""
    server = _server(cloud, m)
    items = [
        {"device": device, "id": vid, "serverId": server.id, "volumeId": vid}
        for vid, device, _ in cloud.ecs.attached(server.id)
    ]
    return json_reply(200, {"volumeAttachments": items}, req)


ROUTES: list[Route] = [
    route("GET", r"/v1/{project}/cloudservers/(?P<server_id>[^/]+)", show_server),
    route(
        "GET",
        r"/v1/{project}/cloudservers/(?P<server_id>[^/]+)/os-volume_attachments",
        list_attachments,
    ),
]
