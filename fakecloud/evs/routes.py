"""EVS HTTP: the export action (CinderExportToImage), ShowVolume, listing and tag queries."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fakecloud.base import BadJson, Reply, Request, Route, iso_micro, json_reply, parse_json, route
from fakecloud.evs.errors import bad_request, evs_error, not_found, tag_filter_error
from fakecloud.tagquery import parse_tag_query, tags_match

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud

DISK_FORMATS = ("vhd", "zvhd", "zvhd2", "raw", "qcow2")
CONTAINER_FORMATS = ("ami", "ari", "aki", "ovf", "bare")
OS_TYPES = ("windows", "linux")
EXPORT_KEYS = ("image_name", "disk_format", "container_format", "force", "__os_type")
IMAGE_NAME_RE = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff\-._ ]{1,128}$")
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
    volume, image = cloud.evs.export(m.group("volume_id"), opts)
    answer = {
        "os-volume_upload_image": {
            "status": "uploading",
            "size": volume.size,
            "id": volume.id,
            "image_id": image.id,
            "image_name": image.name,
            "volume_type": dict(VOLUME_TYPE),
            "container_format": image.container_format,
            "disk_format": image.disk_format,
            "display_description": "",
            "updated_at": iso_micro(volume.updated_at or cloud.now()),
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


def filter_volumes(cloud: FakeCloud, req: Request, m: re.Match[str]) -> Reply:
    """POST /v2/{project}/cloudvolumes/resource_instances/action: volumes by tag."""
    try:
        body = parse_json(req)
    except BadJson as exc:
        raise tag_filter_error(str(exc)) from exc
    action, tags, matches, limit, offset = parse_tag_query(
        body, string_numbers=False, error=tag_filter_error
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


# Method, path, handler and the IAM action each needs (PLATFORM.md 10.6).
ROUTES: list[Route] = [
    route(
        "POST",
        r"/v2/{project}/volumes/(?P<volume_id>[^/]+)/action",
        export_volume,
        "evs:volumes:uploadImage",  # [C] evs_04_2086
    ),
    route("GET", r"/v2/{project}/cloudvolumes/detail", list_volumes, "evs:volumes:list"),  # [S]
    route(
        "POST",
        r"/v2/{project}/cloudvolumes/resource_instances/action",
        filter_volumes,
        "evs:volumeTags:get",  # [S] volumes by tag (resource_instances)
    ),
    route(
        "GET",
        r"/v2/{project}/cloudvolumes/(?P<volume_id>[^/]+)",
        show_volume,
        "evs:volumes:get",  # [S]
    ),
]
