"""Issue 12's pure pieces: the copies and share_with keys with errors naming the field, the
copy-state tag layout within IMS's limits, what is pending per volume, skip reasons, keep in
the target, the RPO rule, IMS_ENDPOINT_<REGION> and the target client."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from function.cloud.client import CloudClient
from function.cloud.imscopy import target_client
from function.cloud.transport import default_transport
from function.config import Settings
from function.copies import (
    CopyState,
    Replica,
    copy_key,
    in_flight,
    is_shared,
    pending,
    replica_deletions,
    replica_tags,
    reported_with_share,
    rpo_breach,
    size_limit,
    skip_reason,
)
from function.errors import InvalidInput
from function.lifecycle import MARKER_KEY, POLICY_KEY, REPORTED_KEY, STARTED_KEY, ManagedImage
from function.runtime import Runtime
from function.tagbudget import MAX_IMAGE_TAGS, MAX_KEY_CHARS, MAX_VALUE_CHARS
from function.triggers import timer_policy
from function.work import CopyTarget

HOME = "cn-north-4"
HOME_PROJECT = "0123456789abcdef0123456789abcdef"
TARGET_PROJECT = "fedcba9876543210fedcba9876543210"
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
UUID = "16369c5d-384d-4e64-b37a-56d898769362"
BASE: dict[str, Any] = {"policy": "dr", "select": {"volume_ids": [UUID]}}
TARGET = CopyTarget("cn-east-3", TARGET_PROJECT, "cn-east-3", "ims_admin_agency")


def settings() -> Settings:
    return Settings.from_env({"REGION": HOME, "PROJECT_ID": HOME_PROJECT})


def parse(**keys: Any) -> timer_policy.Policy:
    policy = timer_policy.parse_policy(json.dumps({**BASE, **keys}))
    timer_policy.check_targets(policy, settings())
    return policy


def target(**keys: Any) -> dict[str, Any]:
    return {"region": "cn-east-3", "project_id": TARGET_PROJECT, **keys}


def image(n: int, status: str = "active", **tags: str) -> ManagedImage:
    when = T0 + timedelta(hours=n)
    base = {MARKER_KEY: "managed", POLICY_KEY: "dr", STARTED_KEY: str(int(when.timestamp()))}
    return ManagedImage(f"img-{n}", f"dr-{n}", status, when, when, {**base, **tags})


def test_copies_become_targets_with_defaults() -> None:
    """A copy target without project_name or agency_name gets the region ID and the
    documented default agency; keep, rpo and retry_failed travel to the plan."""
    policy = parse(copies=[target(keep=3, rpo="26h", retry_failed=True)])
    plan = timer_policy.plan_for(policy, T0)
    assert plan.copies == (
        CopyTarget("cn-east-3", TARGET_PROJECT, "cn-east-3", "ims_admin_agency", 3, "26h", True),
    )


@pytest.mark.parametrize(
    ("copies", "field", "words"),
    [
        ([target(), target()], "user_event.copies", "each region once"),
        (
            [target(), target(region="cn-south-1"), target(region="ap-southeast-1")],
            "user_event.copies",
            "at most 2",
        ),
        ([target(region="cn-north-4")], "user_event.copies.0.region", "own region"),
        ([target(region="CN East")], "user_event.copies.0.region", "pattern"),
        ([target(project_id=HOME_PROJECT)], "user_event.copies.0.project_id", "own project"),
        ([target(keep=0)], "user_event.copies.0.keep", "greater than or equal to 1"),
        ([target(rpo="a day")], "user_event.copies.0.rpo", "not a duration"),
        ([target(retry_failed="yes")], "user_event.copies.0.retry_failed", "true or false"),
        ([{"project_id": TARGET_PROJECT}], "user_event.copies.0.region", "required"),
        ([target(vault="x")], "user_event.copies.0.vault", "not a known field"),
    ],
)
def test_bad_copies_are_refused_naming_the_field(
    copies: list[dict[str, Any]], field: str, words: str
) -> None:
    """Each malformed copies entry is an InvalidInput naming the offending field."""
    with pytest.raises(InvalidInput) as caught:
        parse(copies=copies)
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("share_with", "field", "words"),
    [
        (["not-a-project"], "user_event.share_with", "not a project ID"),
        ([TARGET_PROJECT, TARGET_PROJECT.upper()], "user_event.share_with", "once"),
        ([HOME_PROJECT], "user_event.share_with.0", "own project"),
    ],
)
def test_bad_share_with_is_refused_naming_the_field(
    share_with: list[str], field: str, words: str
) -> None:
    """share_with takes distinct 32-hex project IDs other than the function's own."""
    with pytest.raises(InvalidInput) as caught:
        parse(share_with=share_with)
    assert caught.value.field == field
    assert words in caught.value.message


def test_copy_state_tags_fit_ims_limits() -> None:
    """A copy-state tag of the longest allowed region and a UUID ref fits 36/43 characters,
    a ref that would not fit is left out, and an unknown value reads as no state."""
    key = copy_key("ap-southeast-10abcde")
    assert len(key) <= MAX_KEY_CHARS
    value = CopyState("done", UUID).value()
    assert value == f"done.{UUID}" and len(value) <= MAX_VALUE_CHARS
    assert CopyState("job", "x" * 60).value() == "job"
    assert CopyState.parse("claimed.1700000000") == CopyState("claimed", "1700000000")
    assert CopyState.parse("bogus.1") is None
    assert CopyState.parse("") is None


def test_image_tags_stay_within_ten_with_two_targets_and_sharing() -> None:
    """Provenance (5), reported-with-sharing, orphaned, two copy states and one copied
    volume tag make ten; the replica carries six."""
    tags = {
        "evs-export": "managed",
        "evs-export-volume": UUID,
        "evs-export-policy": "dr",
        "evs-export-trigger": "timer",
        "evs-export-started": "1700000000-1700000000",
        REPORTED_KEY: reported_with_share("completed", [TARGET_PROJECT]),
        "evs-export-orphaned": "reported",
        copy_key("cn-east-3"): CopyState("done", UUID).value(),
        copy_key("cn-south-1"): CopyState("job", "f" * 32).value(),
        "app": "web",
    }
    assert len(tags) == MAX_IMAGE_TAGS
    assert all(len(k) <= MAX_KEY_CHARS and len(v) <= MAX_VALUE_CHARS for k, v in tags.items())
    replica = replica_tags(image(1, **{"evs-export-volume": UUID}), "dr", HOME)
    assert len(replica) == 6 and replica[MARKER_KEY] == "copy"


def test_a_volume_without_copies_waits_with_its_newest_active_image_only() -> None:
    """No copy started yet: only the newest active image is pending (no backfill)."""
    group = [image(1), image(2), image(3), image(4, status="saving")]
    assert [i.id for i in pending(group, TARGET, {})] == ["img-3"]


def test_images_newer_than_the_newest_copy_wait_oldest_first() -> None:
    """With a copy started, every newer active image not handled yet is pending, oldest
    first; a skipped one is not, and an older uncopied one is not backfilled."""
    group = [image(n) for n in range(1, 6)]
    states = {
        "img-2": CopyState("done", "r2"),
        "img-4": CopyState("skipped", "encrypted"),
    }
    assert [i.id for i in pending(group, TARGET, states)] == ["img-3", "img-5"]


def test_failed_copies_wait_again_only_with_retry_failed() -> None:
    """A failed copy is not pending, unless the target says retry_failed."""
    group = [image(1)]
    states = {"img-1": CopyState("failed", "job")}
    assert pending(group, TARGET, states) == []
    retry = CopyTarget("cn-east-3", TARGET_PROJECT, "cn-east-3", "a", retry_failed=True)
    assert [i.id for i in pending(group, retry, states)] == ["img-1"]


def test_in_flight_counts_claims_and_jobs_of_every_policy_and_target() -> None:
    """Claimed and running copies count, whatever policy or target; others do not."""
    images = [
        image(1, **{copy_key("cn-east-3"): "job.abc", copy_key("cn-south-1"): "claimed.1"}),
        image(2, **{copy_key("cn-east-3"): "done.r", POLICY_KEY: "other"}),
        image(3, **{copy_key("cn-east-3"): "job.x", POLICY_KEY: "other"}),
    ]
    assert in_flight(images) == 3


def test_skip_reasons_by_encryption_and_the_size_table() -> None:
    """Encrypted images and those over the smaller of both regions' limits are skipped."""
    assert skip_reason({"__system_encrypted": "1", "min_disk": 10}, HOME, "cn-east-3") == (
        "encrypted"
    )
    assert skip_reason({"min_disk": 300}, HOME, "cn-east-3") is None
    assert skip_reason({"min_disk": 301}, HOME, "cn-east-3") == "too_large"
    assert skip_reason({"min_disk": 129}, HOME, "ap-southeast-1") == "too_large"
    assert size_limit("cn-south-1", "cn-east-2") == 300
    assert size_limit("cn-north-4", "af-south-1") == 128


def test_keep_in_the_target_is_per_volume_by_source_time() -> None:
    """keep N deletes per volume the copies beyond the N newest by source time, never one
    still being made or one without a source time."""
    replicas = [
        Replica(f"r{n}", "active", "vol-a", f"s{n}", T0 + timedelta(days=n)) for n in range(4)
    ]
    replicas += [
        Replica("r-saving", "saving", "vol-a", "s9", T0 - timedelta(days=9)),
        Replica("r-untimed", "active", "vol-a", "s8", None),
        Replica("b0", "active", "vol-b", "t0", T0),
    ]
    assert [r.id for r in replica_deletions(replicas, 2)] == ["r0", "r1"]


def test_rpo_by_the_newest_copy_and_by_the_oldest_uncopied_image() -> None:
    """A copy whose source is exactly rpo old is fine, a second older is a breach; with no
    copy, the oldest image not yet copied decides."""
    rpo = timedelta(hours=26)
    copy = Replica("r1", "active", "vol-a", "s1", T0)
    assert rpo_breach(copy, [], rpo, T0 + rpo) is None
    breach = rpo_breach(copy, [], rpo, T0 + rpo + timedelta(seconds=1))
    assert breach is not None and breach["age_s"] == 26 * 3600 + 1
    uncopied = [image(0), image(5)]
    assert rpo_breach(None, uncopied, rpo, T0 + rpo) is None
    late = rpo_breach(None, uncopied, rpo, T0 + rpo + timedelta(hours=1))
    assert late is not None and late["oldest_uncopied_image_id"] == "img-0"
    assert rpo_breach(None, [], rpo, T0 + 10 * rpo) is None


def test_sharing_is_recorded_per_project_list() -> None:
    """The reported tag records the share for exactly that project list; another list
    shares again."""
    value = reported_with_share("completed", [TARGET_PROJECT])
    shared = image(1, **{REPORTED_KEY: value})
    assert is_shared(shared, [TARGET_PROJECT])
    assert not is_shared(shared, [TARGET_PROJECT, HOME_PROJECT])
    assert not is_shared(image(2, **{REPORTED_KEY: "completed"}), [TARGET_PROJECT])


def test_ims_endpoint_per_region_and_the_target_client() -> None:
    """IMS_ENDPOINT_CN_EAST_3 sets cn-east-3's IMS; the target client uses it (else the
    public endpoint) with the target's project, sharing the home client's limiter."""
    env = {
        "REGION": HOME,
        "PROJECT_ID": HOME_PROJECT,
        "IMS_ENDPOINT_CN_EAST_3": "http://127.0.0.1:9/",
    }
    home = CloudClient(Settings.from_env(env), Runtime(), default_transport())
    there = target_client(home, "cn-east-3", TARGET_PROJECT)
    assert there.settings.endpoint("ims") == "http://127.0.0.1:9"
    assert there.project_id == TARGET_PROJECT and there.limiter is home.limiter
    south = target_client(home, "cn-south-1", TARGET_PROJECT)
    assert south.settings.endpoint("ims") == "https://ims.cn-south-1.myhuaweicloud.com"
    bad = Settings.from_env({**env, "IMS_ENDPOINT_CN_EAST_3": "ims.example"})
    assert [p.field for p in bad.problems] == ["IMS_ENDPOINT_CN_EAST_3"]


def test_a_job_state_without_its_id_is_never_written() -> None:
    """A job ID too long for the tag renders as a bare ``job`` (the runner then keeps the
    claim, with its time, instead); one that fits is kept whole."""
    assert CopyState("job", "j" * 40).value() == "job"
    assert CopyState("job", "j" * 39).value() == "job." + "j" * 39
