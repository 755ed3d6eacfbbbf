"""The plain cloud records (function/cloud/records.py) read from the APIs' answers."""

from __future__ import annotations

from typing import Any

import pytest

from function.cloud.records import ImageRecord, Volume

SERVER = "b6d1f0c2-3e4a-4f5b-9c8d-1a2b3c4d5e6f"
VOLUME = "16369c5d-384d-4e64-b37a-56d898769362"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"id": VOLUME, "name": "app", "status": "in-use", "bootable": "true",
             "attachments": [{"server_id": SERVER, "device": "/dev/vda"}],
             "tags": {"backup": "daily"}},
            Volume(VOLUME, "app", "in-use", True, SERVER, {"backup": "daily"}),
        ),
        (
            {"id": VOLUME, "name": "data", "status": "available", "bootable": "false",
             "attachments": [], "tags": [{"key": "env", "value": "prod"}]},
            Volume(VOLUME, "data", "available", False, None, {"env": "prod"}),
        ),
        ({}, Volume(VOLUME)),
    ],
    ids=["attached-system", "loose-data-tag-list", "empty-answer"],
)  # fmt: skip
def test_volume_reads_detail_listing_and_tag_query_entries(
    data: dict[str, Any], expected: Volume
) -> None:
    """A volume's detail, a listing entry or a tag-query entry becomes one Volume: bootable
    from EVS's string, the first attachment's server, tags as EVS or IMS shape them."""
    assert Volume.from_api(data, VOLUME) == expected


def test_image_record_from_a_status_only_tag_query_entry_then_completed() -> None:
    """A tag-query entry (status only, PLATFORM.md 10.2) completed from the image's own
    view keeps its tags and takes IMS's name and times."""
    record = ImageRecord.from_resource(
        {"resource_id": "img-1", "resource_name": "n", "resource_detail": {"status": "active"},
         "tags": [{"key": "evs-export", "value": "managed"}]}
    )  # fmt: skip
    assert record is not None and record.created_at is None
    full = record.with_detail(
        {"name": "n", "status": "active", "created_at": "2025-01-01T00:00:00Z",
         "updated_at": "2025-01-01T00:10:00Z"}
    )  # fmt: skip
    assert full.tags == {"evs-export": "managed"}
    assert full.created_at is not None and full.updated_at is not None
    assert (full.updated_at - full.created_at).total_seconds() == 600
