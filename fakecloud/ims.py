"""IMS: private images, export progress (immediate, after N polls, after a duration), tags.

One ImsBackend per region and project: `cloud.ims` is the home region's; `cloud.add_region`
adds others (fakecloud.imscopy replicates images between them). Handlers find theirs with
`backend(cloud, req)` from the request's resolved region.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fakecloud.base import (
    ApiError,
    BadJson,
    Reply,
    Request,
    Route,
    iso_z,
    json_reply,
    parse_json,
    parse_time,
    route,
)
from fakecloud.evs import parse_tag_query, tags_match

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud
    from fakecloud.evs import Volume

MODES = ("immediate", "polls", "duration")
OUTCOMES = ("active", "killed")
FINAL = ("active", "killed")
# PLATFORM.md 10.1 and SDK ListImagesRequest ("默认取值为500"): GET /v2/cloudimages pages hold
# 500 images by default and at most 500; a larger limit is refused.
DEFAULT_LIMIT = 500
MAX_LIMIT = 500
# SDK ListImageByTagsRequestBody: the tag query's filter limit defaults to 10 (at most 1000,
# checked by evs.parse_tag_query).
TAG_QUERY_DEFAULT_LIMIT = 10
# PLATFORM.md 10.3: at most 10 tags per image, key <= 36 characters, value <= 43.
MAX_TAGS = 10
MAX_KEY = 36
MAX_VALUE = 43
_FORBIDDEN_TAG_CHARS = re.compile(r"[=*<>\\,|/]")
_FIELDS = ("disk_format", "container_format", "os_type", "source_volume_id", "min_disk")


@dataclass
class ExportJob:
    """How an image made by an export moves to its final status, and which volume to restore."""

    mode: str
    after: float
    outcome: str
    volume_id: str
    previous_status: str
    started_at: datetime
    polls: int = 0


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
    # Member project ID -> status ("pending" until the member accepts; fakecloud.imscopy).
    members: dict[str, str] = field(default_factory=dict)
    job: ExportJob | None = field(default=None, repr=False, compare=False)
    seq: int = field(default=0, repr=False, compare=False)


def ims_error(status: int, code: str, message: str) -> ApiError:
    """The IMS `{"error_code", "error_msg"}` body."""
    return ApiError(status, {"error_code": code, "error_msg": message})


def bad_param(message: str) -> ApiError:
    """IMG.0001 (the fake's code for an invalid parameter or body) [U: the exact code]."""
    return ims_error(400, "IMG.0001", message)


def not_found(image_id: str) -> ApiError:
    """IMG.0027 for an unknown image."""
    return ims_error(404, "IMG.0027", f"The image {image_id} cannot be found.")


class ImsBackend:
    """IMS state for one project and region, and the export progress settings.

    Without `region` it is the home region's and follows the cloud's region and project.
    """

    def __init__(
        self,
        cloud: FakeCloud,
        region: str | None = None,
        project_id: str | None = None,
        project_name: str | None = None,
    ) -> None:
        self._cloud = cloud
        self._region = region
        self._project_id = project_id
        self._project_name = project_name
        self._images: dict[str, Image] = {}
        self._seq = 0
        self.mode = "immediate"
        self.after = 0.0
        self.outcome = "active"
        self.outcomes: dict[str, str] = {}

    @property
    def region(self) -> str:
        """The region this backend serves."""
        return self._region or self._cloud.region

    @property
    def project_id(self) -> str:
        """The project (owner of every image here) this backend serves."""
        return self._project_id or self._cloud.project_id

    @property
    def project_name(self) -> str:
        """The project's name; by default the region ID, as for Huawei Cloud's default projects."""
        return self._project_name or (
            self._cloud.project_name if self._region is None else self.region
        )

    @property
    def images(self) -> dict[str, Image]:
        """The images by ID, with timed progress applied first."""
        self.sweep()
        return self._images

    def reset(self) -> None:
        """Forget every image and restore the default progress (immediate, active)."""
        self._images.clear()
        self.mode, self.after, self.outcome = "immediate", 0.0, "active"
        self.outcomes.clear()

    def set_progress(
        self, mode: str = "immediate", after: float = 0, outcome: str = "active"
    ) -> None:
        """How images made by later exports finish.

        `immediate`: active (or `outcome`) at once; `polls`: after `after` reads of the image
        (GET, or a list or tag query returning it), the first read seeing `queued`, later ones
        `saving`; `duration`: once `after` seconds of the fake clock have passed.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        if after < 0:
            raise ValueError("after must be >= 0")
        with self._cloud.lock:
            self.mode, self.after, self.outcome = mode, float(after), outcome

    def set_outcome(self, image_name: str, outcome: str) -> None:
        """Make exports to `image_name` end in `outcome` whatever the default."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        with self._cloud.lock:
            self.outcomes[image_name] = outcome

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
        outcome = self.outcomes.get(name, self.outcome)
        job = ExportJob(self.mode, self.after, outcome, volume.id, previous_status, now)
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
        if job.mode == "immediate" or (job.mode == "duration" and job.after <= 0):
            self._finish(image)
        return image

    def _finish(self, image: Image) -> None:
        job = image.job
        if job is None or image.status in FINAL:
            return
        image.status = job.outcome
        image.updated_at = self._cloud.now()
        volume = self._cloud.evs._volumes.get(job.volume_id)
        if volume is not None and volume.status == "uploading":
            volume.status = job.previous_status
            volume.updated_at = image.updated_at

    def poll(self, image: Image) -> None:
        """Count one read of `image` (polls mode)."""
        job = image.job
        if job is None or job.mode != "polls" or image.status in FINAL:
            return
        job.polls += 1
        if job.polls > job.after:
            self._finish(image)
        elif job.polls > 1:
            image.status = "saving"

    def sweep(self) -> None:
        """Apply the fake clock to images in duration mode."""
        with self._cloud.lock:
            now = self._cloud.now()
            for image in self._images.values():
                job = image.job
                if job is None or job.mode != "duration" or image.status in FINAL:
                    continue
                elapsed = (now - job.started_at).total_seconds()
                if elapsed >= job.after:
                    self._finish(image)
                elif elapsed > 0:
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


def _split_tag(raw: str) -> tuple[str, str]:
    """`key=value` (PLATFORM.md) or `key.value` (IMS docs) -> (key, value)."""
    for sep in ("=", "."):
        if sep in raw:
            key, value = raw.split(sep, 1)
            return key, value
    return raw, ""


def _time_filter(raw: str, name: str) -> tuple[str, datetime]:
    op, sep, when = raw.partition(":")
    if not sep or op not in ("gt", "gte", "lt", "lte", "eq", "neq"):
        raise bad_param(f"Invalid {name} filter {raw!r}: expected <gt|gte|lt|lte|eq|neq>:<time>.")
    try:
        return op, parse_time(when)
    except ValueError as exc:
        raise bad_param(f"Invalid {name} filter {raw!r}: bad time.") from exc


def _compare(op: str, left: datetime, right: datetime) -> bool:
    left = left.replace(microsecond=0)
    return {
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
        "eq": left == right,
        "neq": left != right,
    }[op]


def backend(cloud: FakeCloud, req: Request) -> ImsBackend:
    """The IMS backend of the region the request was sent to (resolved by the core)."""
    return cloud.ims_in(req.region)


def _image(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Image:
    image = backend(cloud, req)._images.get(m.group("image_id"))
    if image is None:
        raise not_found(m.group("image_id"))
    return image


def list_images(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v2/cloudimages: filters, created_at ranges, tags, limit/marker paging.

    The body is `{"images": [...]}` only: no `next`, `first` or `schema` (PLATFORM.md 10.1; SDK
    ListImagesResponse `openapi_types = {'images': ...}`), so a reader pages with `marker` until
    a page is shorter than `limit`. Every image matching the filters other than `status` counts
    one poll.
    """
    ims = backend(cloud, req)
    q = req.query
    raw_limit = req.arg("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not re.fullmatch(r"\d+", raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise bad_param(f"Invalid limit {raw_limit!r}: must be an integer 1-{MAX_LIMIT}.")
        limit = int(raw_limit)
    times = [
        (attr, *_time_filter(raw, attr))
        for attr in ("created_at", "updated_at")
        for raw in q.get(attr, [])
    ]
    tags = [_split_tag(raw) for raw in q.get("tag", [])]
    plain = {
        key: req.arg(key)
        for key in ("id", "name", "__imagetype", "owner", "disk_format", "container_format")
    }
    sort_key = req.arg("sort_key") or "created_at"
    sort_dir = req.arg("sort_dir") or "desc"
    if sort_key not in ("created_at", "updated_at", "name", "id", "status") or sort_dir not in (
        "asc",
        "desc",
    ):
        raise bad_param(f"Invalid sort {sort_key!r} {sort_dir!r}.")

    def visible(image: Image) -> bool:
        view = ims.image_dict(image)
        for key, wanted in plain.items():
            if wanted is None:
                continue
            have = "private" if key == "__imagetype" else view.get(key)
            if str(have) != wanted:
                return False
        if not all(image.tags.get(k) == v for k, v in tags):
            return False
        return all(_compare(op, getattr(image, attr), when) for attr, op, when in times)

    candidates = [image for image in ims._images.values() if visible(image)]
    for image in candidates:
        ims.poll(image)
    status = req.arg("status")
    found = [image for image in candidates if status is None or image.status == status]
    found.sort(
        key=lambda image: (str(getattr(image, sort_key)), image.seq), reverse=sort_dir == "desc"
    )
    marker = req.arg("marker")
    if marker is not None:
        ids = [image.id for image in found]
        if marker not in ids:
            raise bad_param(f"Invalid marker {marker!r}: no such image in this listing.")
        found = found[ids.index(marker) + 1 :]
    page = found[:limit]
    return json_reply(200, {"images": [ims.image_dict(image) for image in page]}, req)


def show_image(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v2/images/{id}; counts one poll."""
    image = _image(cloud, req, m)
    backend(cloud, req).poll(image)
    return json_reply(200, backend(cloud, req).image_dict(image), req)


def delete_image(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """DELETE /v2/images/{id}: not protected ones, not while queued or saving."""
    image = _image(cloud, req, m)
    if image.protected:
        raise ims_error(400, "IMG.0028", "The image is protected and cannot be deleted.")
    if image.status in ("queued", "saving"):
        raise ims_error(400, "IMG.0090", "The image being created cannot be deleted.")
    del backend(cloud, req)._images[image.id]
    return json_reply(204, None, req)


def _check_tag_text(text: Any, what: str, low: int, high: int) -> str:
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
        _check_tag_text(key, "key", 1, MAX_KEY): _check_tag_text(value, "value", 0, MAX_VALUE)
        for key, value in tags.items()
    }
    if len(pairs) > MAX_TAGS:
        raise bad_param(f"An image can have at most {MAX_TAGS} tags.")
    return pairs


def tag_action(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v2/{project}/images/{id}/tags/action: create (upsert) or delete tags; 204.

    Idempotent (PLATFORM.md 10.3): creating a tag the image already has, or deleting one it
    lacks, is 204 and changes nothing. The 10-tag limit counts the tags the image already has.
    """
    image = _image(cloud, req, m)
    try:
        body = parse_json(req)
    except BadJson as exc:
        raise bad_param(str(exc)) from exc
    if not isinstance(body, dict) or body.get("action") not in ("create", "delete"):
        raise bad_param("The body must be {'action': 'create'|'delete', 'tags': [...]}.")
    tags = body.get("tags")
    if not isinstance(tags, list) or not tags or not all(isinstance(t, dict) for t in tags):
        raise bad_param("'tags' must be a non-empty list of {key, value} objects.")
    keys = [t.get("key") for t in tags]
    if len(set(map(str, keys))) != len(keys):
        raise bad_param("Tag keys in one request must be unique.")
    if body["action"] == "create":
        pairs = [
            (
                _check_tag_text(t.get("key"), "key", 1, MAX_KEY),
                _check_tag_text(t.get("value"), "value", 0, MAX_VALUE),
            )
            for t in tags
        ]
        image.tags = check_tags({**image.tags, **dict(pairs)})
    else:
        for t in tags:
            key = t.get("key")
            if not isinstance(key, str) or not 1 <= len(key) <= 127:
                raise bad_param(f"Tag key {key!r} must be a string of 1-127 characters.")
            value = t.get("value")
            if value is not None and (not isinstance(value, str) or len(value) > 255):
                raise bad_param(f"Tag value {value!r} must be a string of 0-255 characters.")
            if key in image.tags and (value is None or image.tags[key] == value):
                del image.tags[key]
    image.updated_at = cloud.now()
    return json_reply(204, None, req)


def list_tags(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v2/{project}/images/{id}/tags."""
    image = _image(cloud, req, m)
    tags = [{"key": k, "value": v} for k, v in image.tags.items()]
    return json_reply(200, {"tags": tags}, req)


def _check_tag_filter(body: Any) -> None:
    """IMS's own rules on `tags` beyond the shared ones: a given list is not empty (SDK
    ListImageByTagsRequestBody "不能为空列表"), and each key has at most 10 values, all unique
    (ims_03_0616 [C])."""
    if not isinstance(body, dict) or "tags" not in body or not isinstance(body["tags"], list):
        return
    if not body["tags"]:
        raise bad_param("'tags' must not be an empty list.")
    for item in body["tags"]:
        values = item.get("values") if isinstance(item, dict) else None
        if isinstance(values, list) and (
            len(values) > 10 or len(set(map(str, values))) < len(values)
        ):
            raise bad_param(f"Invalid tag filter {item!r}: at most 10 values, all unique.")


def filter_images(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v2/{project}/images/resource_instances/action: images by tag (string limit/offset).

    Each resource has exactly the SDK's ShowImageByTagsResource keys (`resource_id`,
    `resource_name`, `tags`, `resource_detail`), and `resource_detail` is `{"status": ...}` only
    (PLATFORM.md 10.2, ims_03_0616; SDK QueryImageByTagsResourceDetail): no name, no times.
    `limit` and `offset` are strings; `limit` defaults to 10 and is at most 1000 (SDK
    ListImageByTagsRequestBody); `offset` is not bounded there, so neither is it here.
    """
    try:
        body = parse_json(req)
    except BadJson as exc:
        raise bad_param(str(exc)) from exc
    _check_tag_filter(body)
    action, tags, matches, limit, offset = parse_tag_query(
        body, string_numbers=True, error=bad_param, default_limit=TAG_QUERY_DEFAULT_LIMIT
    )
    ims = backend(cloud, req)
    found = [
        image
        for image in sorted(ims._images.values(), key=lambda i: i.seq)
        if tags_match(image.tags, tags) and all(value in image.name for _, value in matches)
    ]
    if action == "count":
        return json_reply(200, {"total_count": len(found)}, req)
    page = found[offset : offset + limit]
    for image in page:
        ims.poll(image)
    resources = [
        {
            "resource_id": image.id,
            "resource_name": image.name,
            "resource_detail": {"status": image.status},
            "tags": [{"key": k, "value": v} for k, v in image.tags.items()],
        }
        for image in page
    ]
    return json_reply(200, {"resources": resources, "total_count": len(found)}, req)


ROUTES: list[Route] = [
    route("GET", r"/v2/cloudimages", list_images),
    route("GET", r"/v2/images/(?P<image_id>[^/]+)", show_image),
    route("DELETE", r"/v2/images/(?P<image_id>[^/]+)", delete_image),
    route("POST", r"/v2/{project}/images/resource_instances/action", filter_images),
    route("POST", r"/v2/{project}/images/(?P<image_id>[^/]+)/tags/action", tag_action),
    route("GET", r"/v2/{project}/images/(?P<image_id>[^/]+)/tags", list_tags),
]
