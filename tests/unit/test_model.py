"""The seed API's request, response and error models (function/model.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from function.cloud.evs import upload_body
from function.cloud.transport import HttpResponse
from function.errors import InvalidInput
from function.model import (
    ACTION_KEY,
    CONTAINER_FORMATS,
    DISK_FORMATS,
    ExportRequest,
    UploadImageResponse,
    UploadOptions,
    is_uuid,
    parse_error_body,
    parse_export,
)
from tests.unit.fakes import VOLUME

NAME_FIELD = f"{ACTION_KEY}.image_name"
SEED_REQUEST = (
    '{"os-volume_upload_image": {"image_name": "sxmatch2", "force": true, '
    '"container_format": "bare", "disk_format": "vhd", "__os_type": "linux"}}'
)
SEED_RESPONSE = """
{"os-volume_upload_image": {
  "status": "uploading", "size": 40,
  "id": "16369c5d-384d-4e64-b37a-56d898769362",
  "image_id": "c5333daa-fbc8-4d1d-bf79-b0567bb45d15",
  "image_name": "evs-ims-test1027",
  "volume_type": {"description": "None", "deleted": false,
    "created_at": "2015-05-24T14:47:22.132268", "updated_at": "2017-07-29T11:29:33.730076",
    "extra_specs": {"volume_backend_name": "<or> iaas blockstorage_SATA",
                    "XX:availability_zone": "az-dc-1"},
    "is_public": true, "deleted_at": null,
    "id": "8247b6ed-37f0-4c48-8ef1-f0027fb332bc", "name": "SATA"},
  "container_format": "bare", "disk_format": "vhd",
  "display_description": "", "updated_at": "2018-01-11T01:50:25.800931"}}
"""


def body_of(parsed: tuple[ExportRequest, UploadOptions]) -> dict[str, Any]:
    """The wire body the export sends for a parsed export (function.cloud.evs builds it)."""
    return upload_body(parsed[1])


def export(**options: object) -> dict[str, Any]:
    """A direct export event for VOLUME with the given upload options."""
    return {"volume_id": VOLUME, ACTION_KEY: dict(options)}


def rejected_field(raw: object) -> str | None:
    """The field named by parse_export's InvalidInput for ``raw``."""
    with pytest.raises(InvalidInput) as info:
        parse_export(raw)
    return info.value.field


# --- image_name ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "x" * 128])
def test_image_name_length_bounds_accepted(name: str) -> None:
    """Names of exactly 1 and 128 characters are valid and sent as given."""
    wire = body_of(parse_export(export(image_name=name)))
    assert wire == {ACTION_KEY: {"image_name": name}}


@pytest.mark.parametrize("name", ["", "x" * 129])
def test_image_name_length_out_of_bounds_rejected(name: str) -> None:
    """Names of 0 and 129 characters are rejected naming image_name and the length."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name=name))
    assert info.value.field == NAME_FIELD
    assert info.value.code == "InvalidInput"
    assert f"got {len(name)}" in info.value.message


@pytest.mark.parametrize("name", [" img", "img ", " "])
def test_image_name_leading_or_trailing_space_rejected(name: str) -> None:
    """A name starting or ending with a space is rejected."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name=name))
    assert info.value.field == NAME_FIELD
    assert "space" in info.value.message


def test_image_name_inner_spaces_accepted() -> None:
    """Spaces inside a name are allowed."""
    wire = body_of(parse_export(export(image_name="nightly  backup 1")))
    assert wire[ACTION_KEY]["image_name"] == "nightly  backup 1"


@pytest.mark.parametrize(
    "name",
    ["ABCxyz", "镜像", "镜像-backup_1.0", "0123456789", "a-b.c_d e", "-._", "数据盘 导出 2025"],
)
def test_image_name_allowed_characters_accepted(name: str) -> None:
    """Letters, Chinese characters, digits, '-', '.', '_' and inner spaces are accepted."""
    wire = body_of(parse_export(export(image_name=name)))
    assert wire[ACTION_KEY]["image_name"] == name


@pytest.mark.parametrize(
    "name",
    ["a/b", "a@b", "img\U0001f600", "a\tb", "café", "a:b", "a\u3000b", "ｉｍｇ", "٣"],
)
def test_image_name_disallowed_characters_rejected(name: str) -> None:
    """Slash, at-sign, emoji, tab, non-ASCII letters and non-ASCII digits are rejected."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name=name))
    assert info.value.field == NAME_FIELD
    assert "may hold only" in info.value.message


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "\nabc", "a\nb"])
def test_image_name_with_newline_rejected(name: str) -> None:
    """A newline anywhere in the name (also at the very end) is not an allowed character."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name=name))
    assert info.value.field == NAME_FIELD


@pytest.mark.parametrize("value", [5, None, ["a"], {"a": 1}, True])
def test_image_name_must_be_a_string(value: object) -> None:
    """A non-string image_name is rejected as such, not coerced."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name=value))
    assert info.value.field == NAME_FIELD
    assert info.value.message == f"{NAME_FIELD} must be a string"


def test_image_name_missing_rejected() -> None:
    """The required image_name is reported missing by its full path."""
    with pytest.raises(InvalidInput) as info:
        parse_export({"volume_id": VOLUME, ACTION_KEY: {"force": True}})
    assert info.value.field == NAME_FIELD
    assert info.value.message == f"{NAME_FIELD} is required"


# --- enumerations, force, __os_type -----------------------------------------------------------


@pytest.mark.parametrize("fmt", DISK_FORMATS)
def test_every_disk_format_accepted(fmt: str) -> None:
    """Each documented disk_format (vhd, zvhd, zvhd2, raw, qcow2) is accepted."""
    wire = body_of(parse_export(export(image_name="a", disk_format=fmt)))
    assert wire[ACTION_KEY]["disk_format"] == fmt


def test_disk_formats_are_the_documented_set() -> None:
    """The enumeration is exactly the seed's list."""
    assert set(DISK_FORMATS) == {"vhd", "zvhd", "zvhd2", "raw", "qcow2"}
    assert set(CONTAINER_FORMATS) == {"ami", "ari", "aki", "ovf", "bare"}


@pytest.mark.parametrize("fmt", ["VHD", "vmdk", "iso", "", 1])
def test_unknown_disk_format_rejected(fmt: object) -> None:
    """A disk_format outside the enumeration (case-sensitive) is rejected naming the field."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name="a", disk_format=fmt))
    assert info.value.field == f"{ACTION_KEY}.disk_format"


@pytest.mark.parametrize("fmt", CONTAINER_FORMATS)
def test_every_container_format_accepted(fmt: str) -> None:
    """Each documented container_format (ami, ari, aki, ovf, bare) is accepted."""
    wire = body_of(parse_export(export(image_name="a", container_format=fmt)))
    assert wire[ACTION_KEY]["container_format"] == fmt


@pytest.mark.parametrize("fmt", ["docker", "BARE", "ova"])
def test_unknown_container_format_rejected(fmt: str) -> None:
    """A container_format outside the enumeration is rejected naming the field."""
    assert rejected_field(export(image_name="a", container_format=fmt)) == (
        f"{ACTION_KEY}.container_format"
    )


@pytest.mark.parametrize("field", ["disk_format", "container_format", "force", "__os_type"])
def test_optional_fields_reject_null(field: str) -> None:
    """An optional field explicitly set to null is rejected rather than sent as null."""
    assert rejected_field(export(image_name="a", **{field: None})) == f"{ACTION_KEY}.{field}"


@pytest.mark.parametrize("value", [True, False])
def test_force_json_bool_accepted(value: bool) -> None:
    """force accepts the JSON booleans and sends them unchanged."""
    wire = body_of(parse_export(export(image_name="a", force=value)))
    assert wire[ACTION_KEY]["force"] is value


@pytest.mark.parametrize("value", ["true", "false", 1, 0, "yes"])
def test_force_non_bool_rejected(value: object) -> None:
    """force must be a JSON boolean: strings and integers are rejected."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name="a", force=value))
    assert info.value.field == f"{ACTION_KEY}.force"
    assert "JSON boolean" in info.value.message


@pytest.mark.parametrize("os_type", ["windows", "linux"])
def test_os_type_sent_under_literal_key(os_type: str) -> None:
    """__os_type is accepted and sent under that exact key."""
    wire = body_of(parse_export(export(image_name="a", __os_type=os_type)))
    assert wire == {ACTION_KEY: {"image_name": "a", "__os_type": os_type}}
    assert json.dumps(wire) == (
        f'{{"os-volume_upload_image": {{"image_name": "a", "__os_type": "{os_type}"}}}}'
    )


@pytest.mark.parametrize("os_type", ["Linux", "mac", ""])
def test_os_type_unknown_value_rejected(os_type: str) -> None:
    """An __os_type other than windows or linux is rejected naming __os_type."""
    assert rejected_field(export(image_name="a", __os_type=os_type)) == f"{ACTION_KEY}.__os_type"


def test_os_type_without_underscores_is_unknown() -> None:
    """The key os_type (no leading underscores) is not accepted as an alias."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name="a", os_type="linux"))
    assert info.value.field == f"{ACTION_KEY}.os_type"
    assert "not a known field" in info.value.message


def test_unknown_inner_key_rejected() -> None:
    """An unknown key inside os-volume_upload_image is rejected by name."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name="a", description="x"))
    assert info.value.field == f"{ACTION_KEY}.description"
    assert info.value.message == f"{ACTION_KEY}.description is not a known field"


def test_unknown_top_level_key_rejected() -> None:
    """An unknown key beside volume_id is rejected by name."""
    raw = {**export(image_name="a"), "region": "cn-north-4"}
    assert rejected_field(raw) == "region"


def test_missing_action_object_rejected() -> None:
    """Without os-volume_upload_image the request is rejected naming it."""
    assert rejected_field({"volume_id": VOLUME}) == ACTION_KEY


@pytest.mark.parametrize("value", [[], "x", 3, None])
def test_action_object_must_be_an_object(value: object) -> None:
    """os-volume_upload_image must be a JSON object."""
    with pytest.raises(InvalidInput) as info:
        parse_export({"volume_id": VOLUME, ACTION_KEY: value})
    assert info.value.field == ACTION_KEY
    assert info.value.message == f"{ACTION_KEY} must be a JSON object"


@pytest.mark.parametrize("raw", [None, [], "x", 3])
def test_non_object_event_rejected(raw: object) -> None:
    """A non-object export names the event (or the batch path passed as ``where``)."""
    assert rejected_field(raw) == "event"
    with pytest.raises(InvalidInput) as info:
        parse_export(raw, "exports[2]")
    assert info.value.field == "exports[2]"


def test_where_prefixes_the_field_path() -> None:
    """Inside a batch the field path starts with the item's position."""
    with pytest.raises(InvalidInput) as info:
        parse_export(export(image_name="a", disk_format="iso"), "exports[3]")
    assert info.value.field == f"exports[3].{ACTION_KEY}.disk_format"


# --- volume_id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "volume_id",
    [
        "../x",
        "a/b",
        "16369c5d384d4e64b37a56d898769362",
        "{16369c5d-384d-4e64-b37a-56d898769362}",
        "16369c5d-384d-4e64-b37a-56d89876936",
        "16369c5d-384d-4e64-b37a-56d898769362/../../x",
        "g6369c5d-384d-4e64-b37a-56d898769362",
        " 16369c5d-384d-4e64-b37a-56d898769362",
        "",
    ],
)
def test_volume_id_must_be_canonical_uuid(volume_id: str) -> None:
    """Anything but an 8-4-4-4-12 hexadecimal UUID is rejected before it reaches a path."""
    with pytest.raises(InvalidInput) as info:
        parse_export({"volume_id": volume_id, ACTION_KEY: {"image_name": "a"}})
    assert info.value.field == "volume_id"
    assert "UUID" in info.value.message


@pytest.mark.parametrize("volume_id", [f"{VOLUME}\n", f"{VOLUME}\r\n"])
def test_volume_id_with_trailing_newline_rejected(volume_id: str) -> None:
    """A UUID followed by a line break is not a canonical UUID and never reaches the path."""
    assert not is_uuid(volume_id)
    assert rejected_field({"volume_id": volume_id, ACTION_KEY: {"image_name": "a"}}) == (
        "volume_id"
    )


@pytest.mark.parametrize("volume_id", [VOLUME, VOLUME.upper()])
def test_volume_id_uuid_accepted(volume_id: str) -> None:
    """A canonical UUID (either case) is accepted and kept as given."""
    request, _ = parse_export({"volume_id": volume_id, ACTION_KEY: {"image_name": "a"}})
    assert request.volume_id == volume_id


@pytest.mark.parametrize("value", [None, 123, ["x"]])
def test_volume_id_must_be_string(value: object) -> None:
    """A non-string volume_id is rejected naming volume_id."""
    assert rejected_field({"volume_id": value, ACTION_KEY: {"image_name": "a"}}) == "volume_id"


# --- the wire body ---------------------------------------------------------------------------


def test_unset_fields_not_in_wire_body() -> None:
    """Only the fields the caller set are sent; no defaults are filled in."""
    request, upload = parse_export(export(image_name="only-name"))
    wire = upload_body(upload)
    assert wire == {ACTION_KEY: {"image_name": "only-name"}}
    assert request.upload.disk_format is None


def test_wire_body_byte_equal_to_seed_example() -> None:
    """The seed's example request is sent byte for byte, in the caller's key order."""
    raw = {"volume_id": VOLUME, **json.loads(SEED_REQUEST)}
    wire = body_of(parse_export(raw))
    assert json.dumps(wire) == SEED_REQUEST


def test_wire_body_keeps_any_caller_order() -> None:
    """A different key order from the caller is kept, not the model's declaration order."""
    inner = {"__os_type": "windows", "disk_format": "qcow2", "force": False, "image_name": "z"}
    wire = body_of(parse_export({ACTION_KEY: inner, "volume_id": VOLUME}))
    assert list(wire[ACTION_KEY]) == ["__os_type", "disk_format", "force", "image_name"]
    assert json.dumps(wire) == json.dumps({ACTION_KEY: inner})


# --- response model --------------------------------------------------------------------------


def test_seed_response_parses() -> None:
    """The seed's example 202 body parses with every documented field."""
    result = UploadImageResponse.model_validate(json.loads(SEED_RESPONSE)).result
    assert result.image_id == "c5333daa-fbc8-4d1d-bf79-b0567bb45d15"
    assert result.image_name == "evs-ims-test1027"
    assert result.status == "uploading"
    assert result.size == 40
    assert result.id == VOLUME
    assert result.disk_format == "vhd"
    assert result.container_format == "bare"
    assert result.display_description == ""
    assert result.updated_at == "2018-01-11T01:50:25.800931"
    assert result.volume_type is not None
    assert result.volume_type.name == "SATA"
    assert result.volume_type.description == "None"
    assert result.volume_type.extra_specs == {
        "volume_backend_name": "<or> iaas blockstorage_SATA",
        "XX:availability_zone": "az-dc-1",
    }
    assert result.volume_type.model_extra is not None
    assert result.volume_type.model_extra["deleted_at"] is None
    assert result.volume_type.model_extra["is_public"] is True


@pytest.mark.parametrize("key", ["extra_specs", "extra_spec"])
def test_extra_specs_under_either_name(key: str) -> None:
    """volume_type.extra_specs is read from both spellings in the source document."""
    body = {ACTION_KEY: {"image_id": "i", "volume_type": {key: {"RESKEY:x": "az1"}}}}
    result = UploadImageResponse.model_validate(body).result
    assert result.volume_type is not None
    assert result.volume_type.extra_specs == {"RESKEY:x": "az1"}


@pytest.mark.parametrize("description", ["None", 3, None])
def test_volume_type_description_string_int_or_null(description: object) -> None:
    """volume_type.description is accepted as the string, the integer or null."""
    body = {ACTION_KEY: {"image_id": "i", "volume_type": {"description": description}}}
    result = UploadImageResponse.model_validate(body).result
    assert result.volume_type is not None
    assert result.volume_type.description == description


def test_response_extra_keys_kept() -> None:
    """Keys the document does not list are kept, at both levels."""
    body = {ACTION_KEY: {"image_id": "i", "new_field": [1]}, "top": True}
    parsed = UploadImageResponse.model_validate(body)
    assert parsed.result.model_extra == {"new_field": [1]}
    assert parsed.model_extra == {"top": True}


def test_response_without_image_id_is_invalid() -> None:
    """A 202 body without image_id does not validate."""
    with pytest.raises(ValidationError):
        UploadImageResponse.model_validate({ACTION_KEY: {"status": "uploading"}})


# --- error bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"error": {"message": "bad name", "code": "EVS.2024"}}, 400, ("EVS.2024", "bad name")),
        (
            {"badRequest": {"message": "Invalid volume", "code": 400}},
            400,
            ("400", "Invalid volume"),
        ),
        ({"itemNotFound": {"message": "XXXX", "code": "XXX"}}, 404, ("XXX", "XXXX")),
        ({"overLimit": {"message": "slow down"}}, 413, ("413", "slow down")),
        (
            {"error_code": "IMS.0001", "error_msg": "no such image"},
            404,
            ("IMS.0001", "no such image"),
        ),
        ({"error_code": 400, "error_msg": "x"}, 400, ("400", "x")),
        ({"code": "APIGW.0301", "message": "signature"}, 401, ("APIGW.0301", "signature")),
        ({}, 500, ("500", "HTTP 500")),
        (None, 503, ("503", "HTTP 503")),
        ("plain", 502, ("502", "HTTP 502")),
        ([1, 2], 500, ("500", "HTTP 500")),
    ],
)
def test_parse_error_body_shapes(body: object, status: int, expected: tuple[str, str]) -> None:
    """Every documented error shape yields (code, message); else the status stands in."""
    assert parse_error_body(body, status) == expected


@pytest.mark.parametrize("raw", [b"<html>gateway</html>", b"", b"\xff\xfe", b"{not json"])
def test_parse_error_body_non_json(raw: bytes) -> None:
    """A non-JSON or empty body (decoded to None) falls back to the HTTP status."""
    body = HttpResponse(503, {}, raw).json()
    assert body is None
    assert parse_error_body(body, 503) == ("503", "HTTP 503")


def test_parse_error_body_caps_long_messages() -> None:
    """An enormous message is cut to 2048 characters."""
    code, message = parse_error_body({"error": {"code": "X", "message": "m" * 10_000}}, 400)
    assert code == "X"
    assert message == "m" * 2048
