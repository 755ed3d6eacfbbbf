"""function/names.py: image name templates checked, rendered and made unique (vectors)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from function.errors import InvalidInput
from function.names import check_template, make_unique, render, sanitize

WHEN = datetime(2025, 3, 1, 2, 5, 9, tzinfo=timezone.utc)
VOL_A = "16369c5d-384d-4e64-b37a-56d898769362"
VOL_B = "26369c5d-384d-4e64-b37a-56d898769362"
FIELDS = {"volume_id": VOL_A, "volume_name": "app-data", "policy": "nightly", "disk": "data"}


@pytest.mark.parametrize(
    "template",
    ["{policy}-{volume_name}-{time:%Y%m%d-%H%M}", "plain", "{time}", "{volume_id}_{disk} x"],
)
def test_check_template_accepts_known_fields(template: str) -> None:
    """A template of known fields (only {time} formatted, by strftime) is returned as is."""
    assert check_template(template) == template


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        (3, "non-empty"),
        ("x" * 513, "longer than 512"),
        ("{nope}", "unknown field {nope}"),
        ("{volume_name!r}", "conversions are not allowed"),
        ("{volume_name:>10}", "only {time:...} takes a format"),
        ("{time:%Y/%m}", "not a supported strftime format"),
        ("{policy", "not a valid template"),
    ],
)
def test_check_template_rejects_with_the_field_named(template: object, message: str) -> None:
    """A bad template is InvalidInput naming the given field and what is wrong."""
    with pytest.raises(InvalidInput) as caught:
        check_template(template, "user_event.image_name")
    assert caught.value.field == "user_event.image_name"
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{policy}-{volume_name}-{time:%Y%m%d-%H%M}", "nightly-app-data-20250301-0205"),
        ("{time}", "20250301-020509"),
        ("{disk}/{volume_name}", "data-app-data"),
        ("{server_name}-{volume_name}", "app-data"),
        ("--{volume_name}--", "app-data"),
        ("a:::b", "a-b"),
        ("{server_name}", "image-16369c5d"),
    ],
)
def test_render_vectors(template: str, expected: str) -> None:
    """Rendering fills fields and time, replaces unsafe characters, trims dashes, and falls
    back to image-<volume id prefix> when nothing is left."""
    assert render(template, FIELDS, WHEN) == expected


def test_render_cuts_the_longest_name_field_not_the_time() -> None:
    """A name over 128 characters loses characters from the volume name, keeping the time."""
    fields = {**FIELDS, "volume_name": "v" * 200}
    name = render("{volume_name}-{time:%Y%m%d}", fields, WHEN)
    assert len(name) == 128
    assert name.endswith("-20250301")
    assert name.startswith("v" * 100)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ok name", "ok name"),
        (" -x- ", "x"),
        ("a/b\\c", "a-b-c"),
        ("数据盘", "数据盘"),
        ("x" * 130, "x" * 128),
        ("///", "image-image"),
    ],
)
def test_sanitize_vectors(raw: str, expected: str) -> None:
    """sanitize replaces forbidden characters, trims the ends, cuts to 128, or falls back."""
    assert sanitize(raw) == expected


def test_make_unique_leaves_distinct_names_alone() -> None:
    """Names no other volume uses are kept unchanged."""
    assert make_unique([(VOL_A, "a"), (VOL_B, "b")]) == {VOL_A: "a", VOL_B: "b"}


def test_make_unique_suffixes_shared_names_with_the_volume_id_prefix() -> None:
    """Volumes sharing a name each get -<first 8 hex digits of their ID>."""
    assert make_unique([(VOL_A, "same"), (VOL_B, "same")]) == {
        VOL_A: "same-16369c5d",
        VOL_B: "same-26369c5d",
    }


def test_make_unique_grows_the_suffix_past_a_taken_name() -> None:
    """When the 8-digit suffix is another volume's name, the suffix grows to 12 digits."""
    names = make_unique([(VOL_A, "same"), (VOL_B, "same"), ("other", "same-16369c5d")])
    assert names[VOL_A] == "same-16369c5d384d"
    assert names["other"] == "same-16369c5d"
    assert names[VOL_B] == "same-26369c5d"


def test_make_unique_keeps_128_characters() -> None:
    """A shared 128-character name is cut so that name and suffix fit in 128."""
    names = make_unique([(VOL_A, "n" * 128), (VOL_B, "n" * 128)])
    assert {len(n) for n in names.values()} == {128}
    assert names[VOL_A].endswith("-16369c5d")
