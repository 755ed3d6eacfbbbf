"""EVS: the export call (the seed's ``os-volume_upload_image``) and volume reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from function.cloud.client import CloudClient
from function.cloud.records import Accepted, Volume
from function.cloud.tags import parse_tags
from function.errors import ApiError
from function.model import ACTION_KEY, UploadImageResponse, UploadOptions

LIST_PAGE = 1000


def upload_body(upload: UploadOptions) -> dict[str, Any]:
    """The export's wire body ``{"os-volume_upload_image": {...}}``: the fields set, under
    their wire keys (``os_type`` as ``__os_type``), in the caller's order. The one place the
    body is built (the export request and the continuation event)."""
    named = {
        "image_name": upload.image_name,
        "disk_format": upload.disk_format,
        "container_format": upload.container_format,
        "force": upload.force,
        "__os_type": upload.os_type,
    }
    given = {k: v for k, v in named.items() if v is not None}
    inner = {k: given[k] for k in upload.order if k in given}
    inner.update({k: v for k, v in given.items() if k not in inner})
    return {ACTION_KEY: inner}


class EvsClient:
    def __init__(self, client: CloudClient) -> None:
        self.client = client

    def export(
        self,
        volume_id: str,
        upload: UploadOptions,
        find_image: Callable[[str], Accepted | None],
    ) -> Accepted:
        """Export, retried in place. After an ambiguous failure IMS is asked for the image by
        name before anything is sent again, so one request never makes two images. (The
        exporter does not use this loop: it sends ``export_once`` and requeues.)"""
        return self.client.retrier.run(
            lambda: self.export_once(volume_id, upload),
            before_resend=lambda: find_image(upload.image_name),
        )

    def export_once(
        self,
        volume_id: str,
        upload: UploadOptions,
        look_first: Callable[[str], Accepted | None] | None = None,
    ) -> Accepted:
        """One attempt: with ``look_first`` (an earlier attempt failed ambiguously), the image
        it may have made is looked for first and, when found, returned without sending."""
        image_name = upload.image_name
        if look_first is not None:
            found = look_first(image_name)
            if found is not None:
                return found
        path = f"/v2/{self.client.project_id}/volumes/{volume_id}/action"
        resp = self.client.send("evs", "POST", path, body=upload_body(upload))
        try:
            parsed = UploadImageResponse.model_validate(resp.json()).result
        except ValidationError:
            raise ApiError(
                resp.status,
                "InvalidResponse",
                "the export was answered without an image_id",
                resp.request_id,
            ) from None
        return Accepted(
            image_id=parsed.image_id,
            image_name=parsed.image_name or image_name,
            status=parsed.status,
            disk_format=parsed.disk_format,
            container_format=parsed.container_format,
            size_gb=parsed.size,
            request_id=resp.request_id,
        )

    def get_volume(self, volume_id: str) -> Volume:
        resp = self.client.call(
            "evs", "GET", f"/v2/{self.client.project_id}/cloudvolumes/{volume_id}"
        )
        data = resp.json()
        volume = data.get("volume") if isinstance(data, dict) else None
        return Volume.from_api(volume if isinstance(volume, dict) else {}, volume_id)

    def volumes_by_tag(self, tags: dict[str, str]) -> list[Volume]:
        """Volumes carrying every tag (``resource_instances/action``)."""
        path = f"/v2/{self.client.project_id}/cloudvolumes/resource_instances/action"
        wanted = {k: [v] for k, v in tags.items()}
        volumes: list[Volume] = []
        for res in self.client.resources_by_tag("evs", path, wanted):
            if not isinstance(res.get("resource_id"), str):
                continue
            detail = res.get("resource_detail")
            volume = dict(detail) if isinstance(detail, dict) else {}
            volume.setdefault("id", res["resource_id"])
            volume.setdefault("name", res.get("resource_name") or "")
            if "tags" not in volume and isinstance(res.get("tags"), list):
                volume["tags"] = parse_tags(res["tags"])
            volumes.append(Volume.from_api(volume))
        return volumes

    def list_volumes(self) -> list[Volume]:
        """Every volume of the project (``cloudvolumes/detail``, paged by marker)."""
        path = f"/v2/{self.client.project_id}/cloudvolumes/detail"
        volumes: list[Volume] = []
        marker: str | None = None
        while True:
            query = [("limit", str(LIST_PAGE))] + ([("marker", marker)] if marker else [])
            data = self.client.call("evs", "GET", path, query=query).json()
            page = data.get("volumes") if isinstance(data, dict) else None
            if not isinstance(page, list) or not page:
                return volumes
            volumes.extend(Volume.from_api(v) for v in page if isinstance(v, dict))
            links = data.get("volumes_links") if isinstance(data, dict) else None
            has_next = isinstance(links, list) and any(
                isinstance(link, dict) and link.get("rel") == "next" for link in links
            )
            last = page[-1].get("id") if isinstance(page[-1], dict) else None  # the raw page
            if not has_next or not isinstance(last, str) or last == marker:
                return volumes
            marker = last
