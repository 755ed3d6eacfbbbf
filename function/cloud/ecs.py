"""ECS: a server and the disks attached to it."""

from __future__ import annotations

from typing import Any

from function.cloud.client import CloudClient
from function.cloud.records import Server
from function.cloud.tags import parse_tags


class EcsClient:
    def __init__(self, client: CloudClient) -> None:
        self.client = client

    def get_server(self, server_id: str, *, disks: bool = True) -> Server:
        """The server with its attached volumes (two requests: details and attachments);
        with ``disks=False`` its details only (one request; ``volume_ids`` empty), enough
        to follow its status."""
        base = f"/v1/{self.client.project_id}/cloudservers/{server_id}"
        data = self.client.call("ecs", "GET", base).json()
        server = data.get("server") if isinstance(data, dict) else None
        server = server if isinstance(server, dict) else {}
        rows: object = None
        if disks:
            att = self.client.call("ecs", "GET", f"{base}/os-volume_attachments").json()
            rows = att.get("volumeAttachments") if isinstance(att, dict) else None
        volume_ids = [
            str(r.get("volumeId") or r.get("id"))
            for r in (rows if isinstance(rows, list) else [])
            if isinstance(r, dict) and (r.get("volumeId") or r.get("id"))
        ]
        system = _system_volume(server)
        if system in volume_ids:
            volume_ids.remove(system)
            volume_ids.insert(0, system)
        return Server(
            id=server_id,
            name=str(server.get("name") or ""),
            status=str(server.get("status") or ""),
            tags=parse_tags(server.get("tags")),
            volume_ids=tuple(dict.fromkeys(volume_ids)),
            system_volume_id=system,
        )


def _system_volume(server: dict[str, Any]) -> str | None:
    """The volume at boot index 0, if the server says so."""
    attached = server.get("os-extended-volumes:volumes_attached")
    for row in attached if isinstance(attached, list) else []:
        if isinstance(row, dict) and str(row.get("bootIndex")) == "0" and row.get("id"):
            return str(row["id"])
    return None
