"""EVS state: volumes and the export action's state change (CinderExportToImage)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fakecloud.base import iso_micro
from fakecloud.evs.errors import evs_error, not_found

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud
    from fakecloud.ims.models import Image


@dataclass
class Volume:
    """One EVS disk; `status` is mutable (export sets `uploading`, completion restores it)."""

    id: str
    name: str = ""
    status: str = "available"
    size: int = 10
    bootable: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    attachments: list[dict[str, str]] = field(default_factory=list)
    volume_image_metadata: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class EvsBackend:
    """EVS state for one project and region."""

    def __init__(self, cloud: FakeCloud, region: str, project_id: str) -> None:
        self._cloud = cloud
        self.region = region
        self.project_id = project_id
        self._volumes: dict[str, Volume] = {}

    @property
    def volumes(self) -> dict[str, Volume]:
        """The volumes by ID, with timed image progress applied first."""
        self._cloud.ims.sweep()
        return self._volumes

    def reset(self) -> None:
        """Forget every volume."""
        self._volumes.clear()

    def add_volume(
        self,
        id: str,
        name: str = "",
        status: str = "available",
        size: int = 10,
        bootable: bool = False,
        tags: dict[str, str] | None = None,
        attachments: list[dict[str, str]] | None = None,
        volume_image_metadata: dict[str, Any] | None = None,
    ) -> Volume:
        """Create (or replace) a volume."""
        now = self._cloud.now()
        volume = Volume(
            id=id,
            name=name,
            status=status,
            size=size,
            bootable=bootable,
            tags=dict(tags or {}),
            attachments=[dict(a) for a in attachments or []],
            volume_image_metadata=dict(volume_image_metadata or {}),
            created_at=now,
            updated_at=now,
        )
        with self._cloud.lock:
            self._volumes[id] = volume
        return volume

    def export(self, volume_id: str, opts: dict[str, Any]) -> tuple[Volume, Image]:
        """Start an export with validated `opts`: the volume turns `uploading` and IMS gets a
        queued image whose job restores the volume's status when it ends (fakecloud.ims)."""
        volume = self._volumes.get(volume_id)
        if volume is None:
            raise not_found()
        force = bool(opts.get("force", False))
        if not (volume.status == "available" or (volume.status == "in-use" and force)):
            raise evs_error(400, "EVS.5400", "Must specify a valid status.")
        if "__os_type" in volume.volume_image_metadata:
            os_type = str(volume.volume_image_metadata["__os_type"])
        elif volume.status == "available":
            os_type = opts.get("__os_type", "linux")
        else:
            os_type = "linux"
        previous = volume.status
        volume.status = "uploading"
        volume.updated_at = self._cloud.now()
        image = self._cloud.ims.create_export_image(
            name=opts["image_name"],
            volume=volume,
            previous_status=previous,
            disk_format=opts.get("disk_format", "vhd"),
            container_format=opts.get("container_format", "bare"),
            os_type=os_type,
        )
        return volume, image

    def attachments_dicts(self, volume: Volume) -> list[dict[str, Any]]:
        """Cinder-style attachment records."""
        out = []
        for att in volume.attachments:
            server_id = att.get("server_id", "")
            out.append(
                {
                    "server_id": server_id,
                    "device": att.get("device", ""),
                    "attachment_id": str(
                        uuid.uuid5(uuid.NAMESPACE_URL, f"{volume.id}/{server_id}")
                    ),
                    "volume_id": volume.id,
                    "id": volume.id,
                    "host_name": None,
                    "attached_at": iso_micro(volume.created_at or self._cloud.now()),
                }
            )
        return out

    def volume_dict(self, volume: Volume) -> dict[str, Any]:
        """The JSON view of a volume, as ShowVolume and the detail list return it."""
        now = self._cloud.now()
        return {
            "id": volume.id,
            "name": volume.name,
            "status": volume.status,
            "size": volume.size,
            "bootable": "true" if volume.bootable else "false",
            "attachments": self.attachments_dicts(volume),
            "tags": dict(volume.tags),
            "volume_image_metadata": dict(volume.volume_image_metadata),
            "metadata": dict(volume.metadata),
            "availability_zone": f"{self.region}a",
            "volume_type": "SSD",
            "description": "",
            "multiattach": False,
            "shareable": "false",
            "encrypted": False,
            "os-vol-tenant-attr:tenant_id": self.project_id,
            "created_at": iso_micro(volume.created_at or now),
            "updated_at": iso_micro(volume.updated_at or now),
        }
