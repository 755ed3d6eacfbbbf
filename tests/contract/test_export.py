"""EVS export (CinderExportToImage): validation, status rules, the image it makes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.conftest import PROJECT, Client


def test_export_success_shape(client: Client) -> None:
    """A valid export answers 202 in the seed's shape, makes a queued image, volume uploading."""
    client.cloud.ims.set_progress("polls", after=3)
    client.cloud.evs.add_volume("vol-1", name="data", size=40)
    response = client.export("vol-1", "img-1", disk_format="qcow2", container_format="ovf")
    assert response.status_code == 202
    assert len(response.headers["X-Request-Id"]) == 32
    body = response.json()["os-volume_upload_image"]
    assert body["status"] == "uploading"
    assert body["size"] == 40
    assert body["id"] == "vol-1"
    assert body["image_name"] == "img-1"
    assert body["disk_format"] == "qcow2"
    assert body["container_format"] == "ovf"
    assert body["display_description"] == ""
    assert body["updated_at"] == "2025-01-01T00:00:00.000000"
    assert {"id", "name", "extra_specs", "is_public", "deleted"} <= set(body["volume_type"])
    image = client.cloud.ims.images[body["image_id"]]
    assert (image.name, image.status, image.min_disk) == ("img-1", "queued", 40)
    assert (image.disk_format, image.container_format) == ("qcow2", "ovf")
    assert image.source_volume_id == "vol-1"
    assert client.cloud.evs.volumes["vol-1"].status == "uploading"


def test_export_defaults(client: Client) -> None:
    """Without formats the export uses vhd and bare, and the image is linux."""
    client.cloud.evs.add_volume("vol-1")
    body = client.export("vol-1").json()["os-volume_upload_image"]
    assert (body["disk_format"], body["container_format"]) == ("vhd", "bare")
    image = client.cloud.ims.images[body["image_id"]]
    assert (image.disk_format, image.container_format, image.os_type) == ("vhd", "bare", "linux")


@pytest.mark.parametrize(
    "name", ["a", "x" * 128, "Backup 2025-01-01_00.00", "镜像-备份", "A b"], ids=str
)
def test_valid_image_names(client: Client, name: str) -> None:
    """Names of 1-128 letters, CJK, digits, '-', '.', '_' and inner spaces are accepted."""
    client.cloud.evs.add_volume("vol-1")
    assert client.export("vol-1", name).status_code == 202


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("missing-name", {"os-volume_upload_image": {}}, "image_name"),
    ("name-not-string", {"os-volume_upload_image": {"image_name": 5}}, "image_name"),
    ("name-empty", {"os-volume_upload_image": {"image_name": ""}}, "image_name"),
    ("name-too-long", {"os-volume_upload_image": {"image_name": "x" * 129}}, "image_name"),
    ("leading-space", {"os-volume_upload_image": {"image_name": " a"}}, "image_name"),
    ("trailing-space", {"os-volume_upload_image": {"image_name": "a "}}, "image_name"),
    ("bad-char", {"os-volume_upload_image": {"image_name": "a/b"}}, "image_name"),
    ("colon", {"os-volume_upload_image": {"image_name": "a:b"}}, "image_name"),
    (
        "disk-format",
        {"os-volume_upload_image": {"image_name": "a", "disk_format": "vmdk"}},
        "disk_format",
    ),
    (
        "container",
        {"os-volume_upload_image": {"image_name": "a", "container_format": "docker"}},
        "container_format",
    ),
    ("force-string", {"os-volume_upload_image": {"image_name": "a", "force": "true"}}, "force"),
    ("force-int", {"os-volume_upload_image": {"image_name": "a", "force": 1}}, "force"),
    ("os-type", {"os-volume_upload_image": {"image_name": "a", "__os_type": "bsd"}}, "__os_type"),
    ("os-type-key", {"os-volume_upload_image": {"image_name": "a", "os_type": "linux"}}, "os_type"),
    (
        "extra-inner",
        {"os-volume_upload_image": {"image_name": "a", "description": "x"}},
        "description",
    ),
    ("extra-action", {"os-volume_upload_image": {"image_name": "a"}, "os-extend": {}}, "os-extend"),
    ("other-action", {"os-extend": {"new_size": 20}}, "os-extend"),
    ("inner-not-object", {"os-volume_upload_image": "a"}, "object"),
    ("body-list", [], "object"),
]


@pytest.mark.parametrize(
    ("body", "detail"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_invalid_bodies(client: Client, body: Any, detail: str) -> None:
    """Each schema violation is 400 badRequest EVS.5400 naming the problem; nothing changes."""
    client.cloud.evs.add_volume("vol-1")
    response = client.evs("POST", "volumes/vol-1/action", body=body)
    assert response.status_code == 400
    error = response.json()["badRequest"]
    assert error["code"] == "EVS.5400"
    assert error["message"].startswith("Malformed request body.")
    assert detail in error["message"]
    assert client.cloud.ims.images == {}
    assert client.cloud.evs.volumes["vol-1"].status == "available"


def test_body_not_json(client: Client) -> None:
    """A body that is not JSON is 400 EVS.5400."""
    client.cloud.evs.add_volume("vol-1")
    response = client.evs("POST", "volumes/vol-1/action", raw=b"{nope")
    assert response.status_code == 400
    assert response.json()["badRequest"]["code"] == "EVS.5400"


def test_unknown_volume(client: Client) -> None:
    """Exporting a volume that does not exist is 404 itemNotFound EVS.5404."""
    response = client.export("nope")
    assert response.status_code == 404
    assert response.json() == {
        "itemNotFound": {
            "code": "EVS.5404",
            "message": "Resource(Volume, Snapshot, Backup .etc) cound not be found.",
        }
    }


def test_in_use_needs_force(client: Client) -> None:
    """An in-use volume is refused without force (400 'Must specify a valid status.')."""
    client.cloud.evs.add_volume("vol-1", status="in-use")
    for response in (client.export("vol-1"), client.export("vol-1", force=False)):
        assert response.status_code == 400
        assert response.json() == {
            "error": {"code": "EVS.5400", "message": "Must specify a valid status."}
        }
    assert client.cloud.ims.images == {}


def test_in_use_with_force(client: Client) -> None:
    """An in-use volume is exported with force true and returns to in-use when done."""
    client.cloud.ims.set_progress("polls", after=1)
    client.cloud.evs.add_volume("vol-1", status="in-use")
    response = client.export("vol-1", force=True)
    assert response.status_code == 202
    assert client.cloud.evs.volumes["vol-1"].status == "uploading"
    image_id = response.json()["os-volume_upload_image"]["image_id"]
    client.image(image_id)
    client.image(image_id)
    assert client.cloud.evs.volumes["vol-1"].status == "in-use"


@pytest.mark.parametrize("status", ["uploading", "creating", "error", "downloading", "backing-up"])
def test_other_statuses_refused(client: Client, status: str) -> None:
    """Volumes neither available nor in-use are refused even with force."""
    client.cloud.evs.add_volume("vol-1", status=status)
    response = client.export("vol-1", force=True)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Must specify a valid status."


def test_second_export_while_uploading(client: Client) -> None:
    """A second export of a volume still uploading is refused."""
    client.cloud.ims.set_progress("polls", after=5)
    client.cloud.evs.add_volume("vol-1")
    assert client.export("vol-1", "a").status_code == 202
    assert client.export("vol-1", "b").status_code == 400
    assert len(client.cloud.ims.images) == 1


@pytest.mark.parametrize(
    ("status", "metadata", "requested", "expected"),
    [
        ("available", {}, None, "linux"),
        ("available", {}, "windows", "windows"),
        ("available", {"__os_type": "windows"}, "linux", "windows"),
        ("in-use", {}, "windows", "linux"),
        ("in-use", {"__os_type": "windows"}, "linux", "windows"),
    ],
)
def test_os_type_rules(
    client: Client, status: str, metadata: dict[str, str], requested: str | None, expected: str
) -> None:
    """__os_type: the volume's image metadata wins; the request counts only when available."""
    client.cloud.evs.add_volume("vol-1", status=status, volume_image_metadata=metadata)
    fields: dict[str, Any] = {"force": True}
    if requested:
        fields["__os_type"] = requested
    response = client.export("vol-1", **fields)
    assert response.status_code == 202
    image_id = response.json()["os-volume_upload_image"]["image_id"]
    assert client.cloud.ims.images[image_id].os_type == expected
    assert client.image(image_id).json()["__os_type"] == expected


def test_export_recorded(client: Client) -> None:
    """The request log holds the export with its parsed body, service and status."""
    client.cloud.evs.add_volume("vol-1")
    client.export("vol-1", "img-9")
    record = client.cloud.requests[-1]
    assert (record.method, record.service, record.status) == ("POST", "evs", 202)
    assert record.path == f"/v2/{PROJECT}/volumes/vol-1/action"
    assert record.json() == {"os-volume_upload_image": {"image_name": "img-9"}}
    assert record.headers["x-project-id"] == PROJECT
