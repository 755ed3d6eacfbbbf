"""Image listings page by marker, as the real IMS does (PLATFORM.md 10.1: no ``next`` link):
a duplicate beyond the first page of 500 is still found, so no second image is made."""

from __future__ import annotations

from datetime import timedelta

from tests.functional.conftest import START, VOLUME_A, VOLUME_B, Harness, export_batch

VOLUME_C = "36369c5d-384d-4e64-b37a-56d898769362"
VOLUME_D = "46369c5d-384d-4e64-b37a-56d898769362"


def test_duplicate_on_page_two_of_a_600_image_project_is_skipped(harness: Harness) -> None:
    """With 600 private images and the batch's fourth name held by the oldest (page 2 of the
    newest-first listing), four names are checked with one paged listing and the fourth
    export ends skipped as a duplicate, never sent."""
    harness.cloud.evs.add_volume(id=VOLUME_C, name="c", status="available", size=10)
    harness.cloud.evs.add_volume(id=VOLUME_D, name="d", status="available", size=10)
    old = harness.cloud.ims.add_image(name="img-4", created_at=START - timedelta(days=400))
    for n in range(600):
        harness.cloud.ims.add_image(name=f"other-{n}", created_at=START - timedelta(minutes=n))

    result = harness.run(export_batch(VOLUME_A, VOLUME_B, VOLUME_C, VOLUME_D))

    kinds = {e["subject"]: e["type"] for e in result["results"]}
    assert kinds == {
        VOLUME_A: "evs.export.accepted",
        VOLUME_B: "evs.export.accepted",
        VOLUME_C: "evs.export.accepted",
        VOLUME_D: "evs.export.skipped",
    }
    skipped = result["results"][3]["data"]
    assert skipped["reason"] == "duplicate" and skipped["image_id"] == old.id
    assert harness.requests("GET", r"^/v2/cloudimages$") == 2  # page 1 (500), page 2 (101)
    assert harness.requests("POST", r"/volumes/[^/]+/action$") == 3
    assert [i.name for i in harness.cloud.ims.images.values()].count("img-4") == 1
