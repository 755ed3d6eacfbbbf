"""IMS: finding images by name or ID (the export's idempotency check)."""

from __future__ import annotations

from typing import Any

from function.cloud.client import CloudClient
from function.cloud.evs import Accepted

PAGE = 500


class ImsClient:
    def __init__(self, client: CloudClient) -> None:
        self.client = client

    def list_images(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /v2/cloudimages`` with exact filters, following ``marker`` pages."""
        images: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            query = [*sorted(filters.items()), ("limit", str(PAGE))]
            if marker:
                query.append(("marker", marker))
            data = self.client.call("ims", "GET", "/v2/cloudimages", query=query).json()
            page = data.get("images") if isinstance(data, dict) else None
            if not isinstance(page, list):
                return images
            images.extend(i for i in page if isinstance(i, dict))
            if len(page) < PAGE or not data.get("next"):
                return images
            last = page[-1].get("id") if isinstance(page[-1], dict) else None
            if not isinstance(last, str) or last == marker:
                return images
            marker = last

    def get_image(self, image_id: str) -> dict[str, Any]:
        """One image (``GET /v2/images/{id}``)."""
        data = self.client.call("ims", "GET", f"/v2/images/{image_id}").json()
        return data if isinstance(data, dict) else {}

    def find_export(self, image_name: str) -> Accepted | None:
        """The private image carrying ``image_name``, as an accepted export, if one exists."""
        found = [
            i
            for i in self.list_images(name=image_name, __imagetype="private")
            if i.get("name") == image_name and i.get("status") != "deleted"
        ]
        if not found:
            return None
        image = max(found, key=lambda i: str(i.get("created_at", "")))
        min_disk = image.get("min_disk")
        return Accepted(
            image_id=str(image.get("id")),
            image_name=image_name,
            status="uploading",
            disk_format=_str(image.get("disk_format")),
            container_format=_str(image.get("container_format")),
            size_gb=min_disk if isinstance(min_disk, int) else None,
            request_id=None,
            recovered=True,
        )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
