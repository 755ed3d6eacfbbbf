"""EVS: the export call (the seed's ``os-volume_upload_image``) and volume reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from function.cloud.client import CloudClient
from function.errors import ApiError
from function.model import UploadImageResponse


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


class EvsClient:
    def __init__(self, client: CloudClient) -> None:
        self.client = client

    def export(
        self,
        volume_id: str,
        body: dict[str, Any],
        image_name: str,
        find_image: Callable[[str], Accepted | None],
    ) -> Accepted:
        """Export once. After an ambiguous failure IMS is asked for the image by name before
        anything is sent again, so one request never makes two images."""
        path = f"/v2/{self.client.project_id}/volumes/{volume_id}/action"

        def attempt() -> Accepted:
            resp = self.client.send("evs", "POST", path, body=body)
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

        return self.client.retrier.run(attempt, before_resend=lambda: find_image(image_name))

    def get_volume(self, volume_id: str) -> dict[str, Any]:
        resp = self.client.call(
            "evs", "GET", f"/v2/{self.client.project_id}/cloudvolumes/{volume_id}"
        )
        data = resp.json()
        volume = data.get("volume") if isinstance(data, dict) else None
        return volume if isinstance(volume, dict) else {}
