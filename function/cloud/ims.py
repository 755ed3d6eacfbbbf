"""IMS: finding images by name or ID (the export's idempotency check), and the provenance
tags, tag queries and deletions of the image life cycle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from function.cloud.client import CloudClient
from function.cloud.records import Accepted
from function.errors import ApiError

PAGE = 500
GONE_CODES = ("IMG.0027", "IMG.0086", "IMG.0144")  # image not found
DEAD = ("killed", "deleted")  # an image in these states does not hold its name


def holds_name(image: Mapping[str, Any], name: str) -> bool:
    """True when ``image`` is a live image named ``name``: one that makes an export of that
    name a duplicate (before sending) or its result (after an ambiguous failure)."""
    return image.get("name") == name and image.get("status") not in DEAD


class ImsClient:
    def __init__(self, client: CloudClient) -> None:
        self.client = client

    def list_images(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /v2/cloudimages`` with exact filters, following ``marker`` pages.

        The real listing has no ``next`` link (PLATFORM.md 10.1: the SDK's
        ``ListImagesResponse`` holds only ``images``): ask for the next page, from the last
        image seen, until a page comes back shorter than ``limit``."""
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
            if len(page) < PAGE:
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
            if holds_name(i, image_name)
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

    def images_by_tag(self, tags: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        """Images carrying every tag key (with one of its values), as ``resource_instances``
        lists them."""
        path = f"/v2/{self.client.project_id}/images/resource_instances/action"
        return self.client.resources_by_tag("ims", path, tags, string_paging=True)

    def tag_image(self, image_id: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags of one image (one request for all of them)."""
        body = {"action": "create", "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        path = f"/v2/{self.client.project_id}/images/{image_id}/tags/action"
        self.client.call("ims", "POST", path, body=body)

    def delete_image(self, image_id: str) -> None:
        """``DELETE /v2/images/{id}``; an image already gone (after a retried, ambiguous
        delete) counts as deleted."""
        try:
            self.client.call("ims", "DELETE", f"/v2/images/{image_id}")
        except ApiError as exc:
            if exc.http_status == 404 or exc.code in GONE_CODES:
                return
            raise


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
