"""Plain records of what the cloud answered, with no HTTP stack behind them: triggers, work
and results use these without importing the clients, the transport or the SDK signer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from function.cloud.tags import parse_tags
from function.times import parse_iso


@dataclass(frozen=True)
class Accepted:
    """What the export's 202 said (or, after an ambiguous failure, what IMS showed)."""

    image_id: str
    image_name: str
    status: str | None
    disk_format: str | None
    container_format: str | None
    size_gb: int | None
    request_id: str | None
    recovered: bool = False


@dataclass(frozen=True)
class Volume:
    """An EVS volume as the planner needs it: from a volume's detail, a ``cloudvolumes``
    listing entry or a tag-query entry (``attachments`` name the server it is on;
    ``bootable`` is the string ``"true"``/``"false"`` on the wire)."""

    id: str
    name: str = ""
    status: str | None = None
    bootable: bool = False
    server_id: str | None = None  # the first server it is attached to
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], volume_id: str = "") -> Volume:
        """The record of ``data`` (``volume_id`` when the answer names none)."""
        server_id = None
        rows = data.get("attachments")
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, Mapping) and row.get("server_id"):
                server_id = str(row["server_id"])
                break
        status = data.get("status")
        return cls(
            id=str(data.get("id") or volume_id),
            name=str(data.get("name") or ""),
            status=status if isinstance(status, str) else None,
            bootable=str(data.get("bootable")).lower() == "true",
            server_id=server_id,
            tags=parse_tags(data.get("tags")),
        )


@dataclass(frozen=True)
class Server:
    """An ECS server and the volumes attached to it."""

    id: str
    name: str
    status: str
    tags: dict[str, str]
    volume_ids: tuple[str, ...]  # the system disk first
    system_volume_id: str | None


def image_time(value: object) -> datetime | None:
    """An IMS time (``2025-01-01T00:00:00Z``); None when absent or unreadable."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    return parse_iso(value)


R = TypeVar("R", bound="ImageRecord")


@dataclass(frozen=True)
class ImageRecord:
    """One image as IMS lists it: from the tag query (``resource_instances``), whose detail
    holds only ``status`` (PLATFORM.md 10.2), completed from the image listing or a GET."""

    id: str
    name: str
    status: str | None
    created_at: datetime | None
    updated_at: datetime | None
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_resource(cls: type[R], resource: Mapping[str, Any]) -> R | None:
        """A tag-query entry (None without an ID). The docs spell its detail key
        ``resource_detail``, the SDK model ``resouce_detail``: both are read."""
        detail = resource.get("resource_detail", resource.get("resouce_detail"))
        detail = detail if isinstance(detail, Mapping) else {}
        image_id = resource.get("resource_id") or detail.get("id")
        if not isinstance(image_id, str) or not image_id:
            return None
        raw_tags = resource.get("tags")
        status = detail.get("status")
        return cls(
            id=image_id,
            name=str(resource.get("resource_name") or detail.get("name") or ""),
            status=status if isinstance(status, str) else None,
            created_at=image_time(detail.get("created_at")),
            updated_at=image_time(detail.get("updated_at")),
            tags=parse_tags(raw_tags) if isinstance(raw_tags, list) else {},
        )

    def with_detail(self: R, detail: Mapping[str, Any]) -> R:
        """This record completed from an image's own view (``GET /v2/images/{id}`` or a
        listing entry): IMS's status, name and times win; the tags stay."""
        status = detail.get("status")
        return replace(
            self,
            name=str(detail.get("name") or "") or self.name,
            status=status if isinstance(status, str) else self.status,
            created_at=image_time(detail.get("created_at")) or self.created_at,
            updated_at=image_time(detail.get("updated_at")) or self.updated_at,
        )
