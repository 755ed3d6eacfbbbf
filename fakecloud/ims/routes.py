"""IMS HTTP: list, show and delete images, image tags and the tag query.

Handlers find their region's backend with `backend(cloud, req)` from the request's resolved
region.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fakecloud.base import BadJson, Reply, Request, Route, json_reply, parse_json, parse_time, route
from fakecloud.ims.errors import bad_param, ims_error, not_found
from fakecloud.ims.models import MAX_KEY, MAX_VALUE, check_tag_text, check_tags
from fakecloud.tagquery import parse_tag_query, tags_match

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud
    from fakecloud.ims.models import Image, ImsBackend

# PLATFORM.md 10.1 and SDK ListImagesRequest ("默认取值为500"): GET /v2/cloudimages pages hold
# 500 images by default and at most 500; a larger limit is refused.
DEFAULT_LIMIT = 500
MAX_LIMIT = 500
# SDK ListImageByTagsRequestBody: the tag query's filter limit defaults to 10 (at most 1000,
# checked by tagquery.parse_tag_query).
TAG_QUERY_DEFAULT_LIMIT = 10


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
                check_tag_text(t.get("key"), "key", 1, MAX_KEY),
                check_tag_text(t.get("value"), "value", 0, MAX_VALUE),
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


# Method, path, handler and the IAM action each needs (PLATFORM.md 10.6).
ROUTES: list[Route] = [
    route("GET", r"/v2/cloudimages", list_images, "ims:images:list"),  # [S]
    route("GET", r"/v2/images/(?P<image_id>[^/]+)", show_image, "ims:images:get"),  # [S]
    route("DELETE", r"/v2/images/(?P<image_id>[^/]+)", delete_image, "ims:images:delete"),  # [S]
    # The tag query enumerates the project's images like GET /v2/cloudimages, so the stricter
    # plausible reading is that it needs ims:images:list: a policy granting only
    # ims:images:get (one known image) must not be able to discover images by tag. [U]
    route(
        "POST", r"/v2/{project}/images/resource_instances/action", filter_images, "ims:images:list"
    ),
    route(
        "POST",
        r"/v2/{project}/images/(?P<image_id>[^/]+)/tags/action",
        tag_action,
        "ims:images:update",  # [S] tags
    ),
    route(
        "GET",
        r"/v2/{project}/images/(?P<image_id>[^/]+)/tags",
        list_tags,
        "ims:images:get",  # [S] reading one image's tags reads the image
    ),
]
