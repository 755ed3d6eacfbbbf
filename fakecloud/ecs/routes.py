"""ECS HTTP: ShowServer and the server's volume attachments."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fakecloud.base import Reply, Request, Route, json_reply, route
from fakecloud.ecs.errors import not_found

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud
    from fakecloud.ecs.models import Server


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


# Method, path, handler and the IAM action each needs (PLATFORM.md 10.6).
ROUTES: list[Route] = [
    route(
        "GET",
        r"/v1/{project}/cloudservers/(?P<server_id>[^/]+)",
        show_server,
        "ecs:cloudServers:get",  # [C]
    ),
    route(
        "GET",
        r"/v1/{project}/cloudservers/(?P<server_id>[^/]+)/os-volume_attachments",
        list_attachments,
        "ecs:cloudServers:listServerVolumeAttachments",  # [C]
    ),
]
