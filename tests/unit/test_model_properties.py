"""Property tests of the seed's naming rules and of parse_export's failure mode."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from function.cloud.evs import upload_body
from function.errors import InvalidInput
from function.model import ACTION_KEY, ExportRequest, UploadOptions, parse_export
from tests.unit.fakes import VOLUME

NAME_FIELD = f"{ACTION_KEY}.image_name"
ASCII_ALLOWED = string.ascii_letters + string.digits + "-._ "


def body_of(parsed: tuple[ExportRequest, UploadOptions]) -> dict[str, Any]:
    """The wire body the export sends for a parsed export (function.cloud.evs builds it)."""
    return upload_body(parsed[1])


def allowed(char: str) -> bool:
    """The seed's character rule, written independently of the code under test."""
    return char in ASCII_ALLOWED or "\u4e00" <= char <= "\u9fff"


allowed_chars = st.sampled_from(ASCII_ALLOWED) | st.characters(
    min_codepoint=0x4E00, max_codepoint=0x9FFF
)
valid_names = st.text(alphabet=allowed_chars, min_size=1, max_size=128).filter(
    lambda s: not s.startswith(" ") and not s.endswith(" ")
)
bad_chars = st.characters().filter(lambda c: not allowed(c))
fragments = st.text(alphabet=allowed_chars, max_size=60)

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
inner_keys = st.sampled_from(
    ["image_name", "disk_format", "container_format", "force", "__os_type", "os_type"]
) | st.text(max_size=10)
inner_values = (
    json_values
    | valid_names
    | st.sampled_from(["vhd", "qcow2", "bare", "ovf", "linux", "windows", True, False])
)
inner_objects = st.dictionaries(inner_keys, inner_values, max_size=6)
top_keys = st.sampled_from(["volume_id", ACTION_KEY]) | st.text(max_size=10)
top_values = json_values | inner_objects | st.sampled_from([VOLUME, "../x", VOLUME + "\n"])
events = st.dictionaries(top_keys, top_values, max_size=4) | json_values


@settings(max_examples=200, deadline=None)
@given(name=valid_names)
def test_any_valid_name_accepted_unchanged(name: str) -> None:
    """Any 1-128 character name of allowed characters, without edge spaces, is sent as given."""
    wire = body_of(parse_export({"volume_id": VOLUME, ACTION_KEY: {"image_name": name}}))
    assert wire == {ACTION_KEY: {"image_name": name}}
    assert json.loads(json.dumps(wire))[ACTION_KEY]["image_name"] == name


@settings(max_examples=200, deadline=None)
@given(prefix=fragments, bad=bad_chars, suffix=fragments)
@example(prefix="a", bad="\n", suffix="")
@example(prefix="img", bad="é", suffix="")
@example(prefix="", bad="\t", suffix="x")
def test_any_disallowed_character_rejected(prefix: str, bad: str, suffix: str) -> None:
    """A name holding any character outside the allowed set is rejected naming image_name."""
    name = prefix + bad + suffix
    try:
        parse_export({"volume_id": VOLUME, ACTION_KEY: {"image_name": name}})
    except InvalidInput as exc:
        assert exc.field == NAME_FIELD
    else:
        raise AssertionError(f"{name!r} was accepted")


@settings(max_examples=200, deadline=None)
@given(raw=events)
def test_parse_export_raises_only_invalid_input(raw: Any) -> None:
    """Arbitrary JSON-shaped input either parses or raises InvalidInput with a field."""
    try:
        request, upload = parse_export(raw)
        wire = upload_body(upload)
    except InvalidInput as exc:
        assert exc.field
        assert exc.message
        return
    assert request.volume_id == raw["volume_id"]
    assert set(wire) == {ACTION_KEY}
    assert wire[ACTION_KEY] == raw[ACTION_KEY]


@settings(max_examples=200, deadline=None)
@given(inner=inner_objects)
def test_parse_export_inner_object_raises_only_invalid_input(inner: dict[str, Any]) -> None:
    """Arbitrary upload options either parse into an identical wire body or name a field."""
    try:
        wire = body_of(parse_export({"volume_id": VOLUME, ACTION_KEY: inner}))
    except InvalidInput as exc:
        assert exc.field is not None
        assert exc.field.startswith(ACTION_KEY)
        return
    assert json.dumps(wire) == json.dumps({ACTION_KEY: inner})
