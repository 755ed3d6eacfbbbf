"""IMS state: private images, export progress (immediate, after N polls, after a duration), tags.

One ImsBackend per region and project: `cloud.ims` is the home region's; `cloud.add_region`
adds others (fakecloud.ims.copy_models replicates images between them). Exports advance by
the transitions of fakecloud.progress.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fakecloud.base import ApiError, iso_z
from fakecloud.ims.errors import bad_param
from fakecloud.progress import FINISH, RUN, Schedule, Timeline, Transition

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud
    from fakecloud.evs.models import Volume

OUTCOMES = ("active", "killed")
FINAL = ("active", "killed")
# PLATFORM.md 10.3: at most 10 tags per image, key <= 36 characters, value <= 43.
MAX_TAGS = 10
MAX_KEY = 36
MAX_VALUE = 43
_FORBIDDEN_TAG_CHARS = re.compile(r"[=*<>\\,|/]")
_FIELDS = ("disk_format", "container_format", "os_type", "source_volume_id", "min_disk")


@dataclass
class ExportJob:
    """How an image made by an export moves to its final status, and which volume to restore."""

    timeline: Timeline
    volume_id: str
    previous_status: str


@dataclass
class Image:
    """One private image; `extra` holds further fields rendered into its JSON view."""

    id: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    disk_format: str = "vhd"
    container_format: str = "bare"
    os_type: str = "linux"
    source_volume_id: str | None = None
    min_disk: int = 0
    protected: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # Member project ID -> status ("pending" until the member accepts; fakecloud.ims.copy_models).
    members: dict[str, str] = field(default_factory=dict)
    job: ExportJob | None = field(default=None, repr=False, compare=False)
    seq: int = field(default=0, repr=False, compare=False)


class ImsBackend:
    """IMS state for one project and region, and the export progress settings."""

    def __init__(
        self, cloud: FakeCloud, region: str, project_id: str, project_name: str | None = None
    ) -> None:
        self._cloud = cloud
        self.region = region
        self.project_id = project_id
        self._project_name = project_name
        self._images: dict[str, Image] = {}
        self._seq = 0
        self.schedule = Schedule(OUTCOMES)

    @property
    def project_name(self) -> str:
        """The project's name; by default the region ID, as for Huawei Cloud's default projects
        (the home region's is the cloud's)."""
        return self._project_name or (
            self._cloud.project_name if self.region == self._cloud.region else self.region
        )

    @property
    def images(self) -> dict[str, Image]:
        """The images by ID, with timed progress applied first."""
        self.sweep()
        return self._images

    def reset(self) -> None:
        """Forget every image and restore the default progress (immediate, active)."""
        self._images.clear()
        self.schedule.reset()

    def set_progress(
        self, mode: str = "immediate", after: float = 0, outcome: str = "active"
    ) -> None:
        """How images made by later exports finish.

        `immediate`: active (or `outcome`) at once; `polls`: after `after` reads of the image
        (GET, or a list or tag query returning it), the first read seeing `queued`, later ones
        `saving`; `duration`: once `after` seconds of the fake clock have passed.
        """
        with self._cloud.lock:
            self.schedule.set(mode, after, outcome)

    def set_outcome(self, image_name: str, outcome: str) -> None:
        """Make exports to `image_name` end in `outcome` whatever the default."""
        with self._cloud.lock:
            self.schedule.set_outcome(image_name, outcome)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_image(
        self,
        id: str | None = None,
        name: str = "x",
        status: str = "active",
        tags: dict[str, str] | None = None,
        created_at: datetime | None = None,
        protected: bool = False,
        **extra: Any,
    ) -> Image:
        """Create (or replace) an image; known fields in `extra` set the attribute.

        Tags IMS would refuse (check_tags: more than 10, key > 36 or value > 43 characters)
        raise ValueError, so a seed cannot hold an image the real service could not.
        """
        try:
            checked = check_tags(tags or {})
        except ApiError as exc:
            raise ValueError(f"image {name!r}: {exc.body['error_msg']}") from exc
        now = self._cloud.now()
        if "__os_type" in extra:
            extra["os_type"] = extra.pop("__os_type")
        known = {k: extra.pop(k) for k in _FIELDS if k in extra}
        updated = extra.pop("updated_at", None)
        image = Image(
            id=id or str(uuid.uuid4()),
            name=name,
            status=status,
            created_at=created_at or now,
            updated_at=updated or created_at or now,
            tags=checked,
            protected=protected,
            extra=extra,
            seq=self._next_seq(),
            **known,
        )
        with self._cloud.lock:
            self._images[image.id] = image
        return image

    def create_export_image(
        self,
        *,
        name: str,
        volume: Volume,
        previous_status: str,
        disk_format: str,
        container_format: str,
        os_type: str,
    ) -> Image:
        """The image an export makes, with its progress job."""
        now = self._cloud.now()
        job = ExportJob(self.schedule.start(name, now), volume.id, previous_status)
        image = Image(
            id=str(uuid.uuid4()),
            name=name,
            status="queued",
            created_at=now,
            updated_at=now,
            disk_format=disk_format,
            container_format=container_format,
            os_type=os_type,
            source_volume_id=volume.id,
            min_disk=volume.size,
            extra={"__data_origin": f"volume,{volume.id}"},
            job=job,
            seq=self._next_seq(),
        )
        self._images[image.id] = image
        if job.timeline.final_at_start():
            self._finish(image)
        return image

    def _finish(self, image: Image) -> None:
        job = image.job
        if job is None or image.status in FINAL:
            return
        image.status = job.timeline.outcome
        image.updated_at = self._cloud.now()
        volume = self._cloud.evs._volumes.get(job.volume_id)
        if volume is not None and volume.status == "uploading":
            volume.status = job.previous_status
            volume.updated_at = image.updated_at

    def poll(self, image: Image) -> None:
        """Count one read of `image` (polls mode)."""
        if image.job is not None and image.status not in FINAL:
            self._advance(image, image.job.timeline.poll())

    def sweep(self) -> None:
        """Apply the fake clock to images in duration mode."""
        with self._cloud.lock:
            now = self._cloud.now()
            for image in self._images.values():
                if image.job is not None and image.status not in FINAL:
                    self._advance(image, image.job.timeline.at(now))

    def _advance(self, image: Image, transition: Transition) -> None:
        if transition == FINISH:
            self._finish(image)
        elif transition == RUN:
            image.status = "saving"

    def image_dict(self, image: Image) -> dict[str, Any]:
        """The JSON view of an image as IMS lists it (tags as `key.value` strings)."""
        out: dict[str, Any] = {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "visibility": "private",
            "__imagetype": "private",
            "owner": self.project_id,
            "protected": image.protected,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "min_disk": image.min_disk,
            "min_ram": 0,
            "size": 0,
            "__os_type": image.os_type,
            "__platform": "Windows" if image.os_type == "windows" else "Linux",
            "__isregistered": "true",
            "__image_source_type": "uvp.vm",
            "virtual_env_type": "FusionCompute",
            "created_at": iso_z(image.created_at),
            "updated_at": iso_z(image.updated_at),
            "tags": [f"{k}.{v}" for k, v in image.tags.items()],
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
        if image.source_volume_id is not None:
            out["__data_origin"] = f"volume,{image.source_volume_id}"
        out.update(image.extra)
        return out


def check_tag_text(text: Any, what: str, low: int, high: int) -> str:
    """One tag key or value within IMS's limits, else 400 in IMS's body."""
    if not isinstance(text, str) or not low <= len(text) <= high:
        raise bad_param(f"Tag {what} {text!r} must be a string of {low}-{high} characters.")
    if _FORBIDDEN_TAG_CHARS.search(text) or text != text.strip(" "):
        raise bad_param(
            f"Tag {what} {text!r} must not contain = * < > \\ , | / nor start or end with a space."
        )
    return text


def check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """A whole tag set as IMS allows it on one image (PLATFORM.md 10.3), else 400 IMG.0001.

    At most MAX_TAGS tags, keys of 1-MAX_KEY and values of 0-MAX_VALUE characters.
    """
    pairs = {
        check_tag_text(key, "key", 1, MAX_KEY): check_tag_text(value, "value", 0, MAX_VALUE)
        for key, value in tags.items()
    }
    if len(pairs) > MAX_TAGS:
        raise bad_param(f"An image can have at most {MAX_TAGS} tags.")
    return pairs
