"""EVS: volumes, the export action (CinderExportToImage), listing and tag queries."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fakecloud.base import (
    ApiError,
    BadJson,
    Reply,
    Request,
    Route,
    iso_micro,
    json_reply,
    parse_json,
    route,
)

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

DISK_FORMATS = ("vhd", "zvhd", "zvhd2", "raw", "qcow2")
CONTAINER_FORMATS = ("ami", "ari", "aki", "ovf", "bare")
OS_TYPES = ("windows", "linux")
EXPORT_KEYS = ("image_name", "disk_format", "container_format", "force", "__os_type")
IMAGE_NAME_RE = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff\-._ ]{1,128}$")
NOT_FOUND_MSG = "Resource(Volume, Snapshot, Backup .etc) cound not be found."
MAX_LIMIT = 1000
VOLUME_TYPE = {
    "id": "8247b6ed-37f0-4c48-8ef1-f0027fb332bc",
    "name": "SSD",
    "description": "None",
    "deleted": False,
    "is_public": True,
    "created_at": "2015-05-24T14:47:22.132268",
    "updated_at": "2017-07-29T11:29:33.730076",
    "deleted_at": None,
    "extra_specs": {
        "volume_backend_name": "SSD",
        "RESKEY:availability_zones": "cn-north-4a,cn-north-4b",
        "os-vendor-extended:sold_out_availability_zones": "",
    },
}


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


def bad_request(detail: str) -> ApiError:
    """EVS.5400 for a body that breaks the export schema."""
    message = f"Malformed request body. {detail}"
    return ApiError(400, {"badRequest": {"code": "EVS.5400", "message": message}})


def evs_error(status: int, code: str, message: str) -> ApiError:
    """The EVS `{"error": {...}}` body."""
    return ApiError(status, {"error": {"code": code, "message": message}})


def not_found() -> ApiError:
    """EVS.5404, the Cinder-style body (typo included, as the service spells it)."""
    return ApiError(404, {"itemNotFound": {"code": "EVS.5404", "message": NOT_FOUND_MSG}})


class EvsBackend:
    """EVS state for one project and region."""

    def __init__(self, cloud: FakeCloud) -> None:
        self._cloud = cloud
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
            "availability_zone": f"{self._cloud.region}a",
            "volume_type": "SSD",
            "description": "",
            "multiattach": False,
            "shareable": "false",
            "encrypted": False,
            "os-vol-tenant-attr:tenant_id": self._cloud.project_id,
            "created_at": iso_micro(volume.created_at or now),
            "updated_at": iso_micro(volume.updated_at or now),
        }


def validate_export(body: Any) -> dict[str, Any]:
    """Check an export body against the seed's rules; return its options or raise EVS.5400."""
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    if "os-volume_upload_image" not in body:
        raise bad_request(f"Unknown action {sorted(body)!r}; expected 'os-volume_upload_image'.")
    extra = sorted(k for k in body if k != "os-volume_upload_image")
    if extra:
        raise bad_request(f"Unexpected keys beside 'os-volume_upload_image': {extra!r}.")
    inner = body["os-volume_upload_image"]
    if not isinstance(inner, dict):
        raise bad_request("'os-volume_upload_image' must be an object.")
    unknown = sorted(k for k in inner if k not in EXPORT_KEYS)
    if unknown:
        raise bad_request(f"Additional properties are not allowed ({unknown!r}).")
    name = inner.get("image_name")
    if name is None:
        raise bad_request("'image_name' is a required property.")
    if not isinstance(name, str):
        raise bad_request("'image_name' must be a string.")
    if not IMAGE_NAME_RE.match(name) or name != name.strip(" "):
        raise bad_request(
            f"Invalid image_name {name!r}: 1-128 letters, Chinese characters, digits, '-', '.',"
            " '_' or spaces, not starting or ending with a space."
        )
    opts: dict[str, Any] = {"image_name": name}
    for key, allowed in (
        ("disk_format", DISK_FORMATS),
        ("container_format", CONTAINER_FORMATS),
        ("__os_type", OS_TYPES),
    ):
        if key in inner:
            value = inner[key]
            if not isinstance(value, str) or value not in allowed:
                raise bad_request(f"Invalid {key} {value!r}; must be one of {list(allowed)!r}.")
            opts[key] = value
    if "force" in inner:
        if not isinstance(inner["force"], bool):
            raise bad_request(f"Invalid force {inner['force']!r}; must be a JSON boolean.")
        opts["force"] = inner["force"]
    return opts


def export_volume(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v2/{project}/volumes/{id}/action: start an export to a new IMS image."""
    try:
        body = parse_json(req)
    except BadJson as exc:
        raise bad_request(str(exc)) from exc
    opts = validate_export(body)
    volume = cloud.evs._volumes.get(m.group("volume_id"))
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
    disk_format = opts.get("disk_format", "vhd")
    container_format = opts.get("container_format", "bare")
    previous = volume.status
    volume.status = "uploading"
    volume.updated_at = cloud.now()
    image = cloud.ims.create_export_image(
        name=opts["image_name"],
        volume=volume,
        previous_status=previous,
        disk_format=disk_format,
        container_format=container_format,
        os_type=os_type,
    )
    answer = {
        "os-volume_upload_image": {
            "status": "uploading",
            "size": volume.size,
            "id": volume.id,
            "image_id": image.id,
            "image_name": image.name,
            "volume_type": dict(VOLUME_TYPE),
            "container_format": container_format,
            "disk_format": disk_format,
            "display_description": "",
            "updated_at": iso_micro(volume.updated_at),
        }
    }
    return json_reply(202, answer, req)


def show_volume(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v2/{project}/cloudvolumes/{id}."""
    volume = cloud.evs._volumes.get(m.group("volume_id"))
    if volume is None:
        raise not_found()
    return json_reply(200, {"volume": cloud.evs.volume_dict(volume)}, req)


def _int_arg(req: Request, name: str, default: int, low: int, high: int, code: str) -> int:
    raw = req.arg(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
        raise evs_error(400, code, f"Invalid {name} {raw!r}: must be an integer {low}-{high}.")
    return int(raw)


def list_volumes(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """GET /v2/{project}/cloudvolumes/detail: filters name/status, paged by limit and marker."""
    limit = _int_arg(req, "limit", MAX_LIMIT, 1, MAX_LIMIT, "EVS.1023")
    offset = _int_arg(req, "offset", 0, 0, 2**31, "EVS.1023")
    name, status, marker = req.arg("name"), req.arg("status"), req.arg("marker")
    found = [
        v
        for v in cloud.evs._volumes.values()
        if (name is None or v.name == name) and (status is None or v.status == status)
    ]
    if marker is not None:
        ids = [v.id for v in found]
        if marker not in ids:
            raise evs_error(400, "EVS.1024", f"Invalid marker {marker!r}: no such volume.")
        found_after = found[ids.index(marker) + 1 :]
    else:
        found_after = found
    window = found_after[offset:]
    page = window[:limit]
    body: dict[str, Any] = {
        "count": len(found),
        "volumes": [cloud.evs.volume_dict(v) for v in page],
    }
    if len(window) > limit:
        params = [(k, v) for k, v in req.query_pairs if k not in ("limit", "marker", "offset")]
        params += [("limit", str(limit)), ("marker", page[-1].id)]
        href = f"{req.base_url}{req.path}?{urlencode(params)}"
        body["volumes_links"] = [{"rel": "next", "href": href}]
    return json_reply(200, body, req)


def _tag_filter_error(detail: str) -> ApiError:
    return evs_error(400, "EVS.5400", f"Malformed request body. {detail}")


def parse_tag_query(
    body: Any,
    *,
    string_numbers: bool,
    error: Callable[[str], ApiError],
    default_limit: int = MAX_LIMIT,
) -> tuple[str, list[tuple[str, list[str]]], list[tuple[str, str]], int, int]:
    """Validate a resource_instances body: action, tags, matches, limit, offset.

    EVS takes limit/offset as integers, IMS as strings holding integers (`string_numbers`);
    `default_limit` is the page size when the body sets none. `limit` is at most 1000.
    """
    if not isinstance(body, dict):
        raise error("The body must be a JSON object.")
    action = body.get("action")
    if action not in ("filter", "count"):
        raise error(f"Invalid action {action!r}; must be 'filter' or 'count'.")
    tags: list[tuple[str, list[str]]] = []
    raw_tags = body.get("tags", [])
    if not isinstance(raw_tags, list) or len(raw_tags) > 10:
        raise error("'tags' must be a list of at most 10 {key, values} objects.")
    for item in raw_tags:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
            raise error(f"Invalid tag filter {item!r}: 'key' must be a non-empty string.")
        values = item.get("values", [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise error(f"Invalid tag filter {item!r}: 'values' must be a list of strings.")
        tags.append((item["key"], values))
    keys = [k for k, _ in tags]
    if len(set(keys)) != len(keys):
        raise error("Tag keys in 'tags' must be unique.")
    matches: list[tuple[str, str]] = []
    raw_matches = body.get("matches", [])
    if not isinstance(raw_matches, list):
        raise error("'matches' must be a list.")
    for item in raw_matches:
        if (
            not isinstance(item, dict)
            or item.get("key") != "resource_name"
            or not isinstance(item.get("value"), str)
        ):
            raise error(f"Invalid match {item!r}: only {{'key': 'resource_name', 'value': str}}.")
        matches.append(("resource_name", item["value"]))
    numbers: list[int] = []
    for name, default, low, high in (
        ("limit", default_limit, 1, MAX_LIMIT),
        ("offset", 0, 0, 2**31),
    ):
        raw = body.get(name)
        if raw is None:
            numbers.append(default)
            continue
        if string_numbers:
            ok = isinstance(raw, str) and re.fullmatch(r"\d+", raw) is not None
        else:
            ok = isinstance(raw, int) and not isinstance(raw, bool)
        if not ok or not low <= int(raw) <= high:
            kind = "a string holding an integer" if string_numbers else "an integer"
            raise error(f"Invalid {name} {raw!r}: must be {kind} {low}-{high}.")
        numbers.append(int(raw))
    return str(action), tags, matches, numbers[0], numbers[1]


def tags_match(have: dict[str, str], wanted: list[tuple[str, list[str]]]) -> bool:
    """Keys ANDed, values ORed within a key, an empty value list meaning the key is present."""
    return all(k in have and (not values or have[k] in values) for k, values in wanted)


def filter_volumes(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v2/{project}/cloudvolumes/resource_instances/action: volumes by tag."""
    try:
        body = parse_json(req)
    except BadJson as exc:
        raise _tag_filter_error(str(exc)) from exc
    action, tags, matches, limit, offset = parse_tag_query(
        body, string_numbers=False, error=_tag_filter_error
    )
    found = [
        v
        for v in cloud.evs._volumes.values()
        if tags_match(v.tags, tags) and all(value in v.name for _, value in matches)
    ]
    if action == "count":
        return json_reply(200, {"total_count": len(found)}, req)
    resources = [
        {
            "resource_id": v.id,
            "resource_name": v.name,
            "resource_detail": cloud.evs.volume_dict(v),
            "tags": [{"key": k, "value": val} for k, val in v.tags.items()],
        }
        for v in found[offset : offset + limit]
    ]
    return json_reply(200, {"resources": resources, "total_count": len(found)}, req)


ROUTES: list[Route] = [
    route("POST", r"/v2/{project}/volumes/(?P<volume_id>[^/]+)/action", export_volume),
    route("GET", r"/v2/{project}/cloudvolumes/detail", list_volumes),
    route("POST", r"/v2/{project}/cloudvolumes/resource_instances/action", filter_volumes),
    route("GET", r"/v2/{project}/cloudvolumes/(?P<volume_id>[^/]+)", show_volume),
]
