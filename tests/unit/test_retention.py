"""The pure retention rules (function.retention): counts, ages, calendar buckets in the
policy's time zone, the newest-active safety, orphans, durations and staleness; and the tag
budget for copied volume tags (function.tagbudget)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from function.retention import (
    Candidate,
    Orphans,
    Rules,
    bucket_key,
    decide,
    decide_orphans,
    is_stale,
    parse_duration,
)
from function.tagbudget import COPY_ROOM, copied_tags, copyable
from function.times import parse_iso

UTC = timezone.utc
CST = timezone(timedelta(hours=8))  # +08:00, no daylight saving


def at(text: str) -> datetime:
    """An aware time from ISO text (offset or ``Z`` required), read alike on 3.10 and 3.11."""
    when = parse_iso(text)
    assert when is not None and when.tzinfo is not None, text
    return when


def img(name: str, when: str, status: str = "active") -> Candidate:
    return Candidate(name, at(when), status)


def kept(images: list[Candidate], rules: Rules, now: str, zone: timezone = UTC) -> list[str]:
    """IDs the rules keep (not deleted), newest first."""
    return [d.image_id for d in decide(images, rules, at(now), zone) if not d.delete]


def dailies(first: date, last: date, zone: timezone, hour: int = 2) -> list[Candidate]:
    """One active image per local day at ``hour`` o'clock, named by its local date."""
    out: list[Candidate] = []
    day = first
    while day <= last:
        out.append(Candidate(day.isoformat(), datetime.combine(day, time(hour), zone), "active"))
        day += timedelta(days=1)
    return out


def test_no_rule_deletes_nothing() -> None:
    """Without any retention rule every image is kept, however old."""
    images = [img(f"i{n}", f"2020-01-{n:02d}T00:00:00+00:00") for n in range(1, 6)]
    assert kept(images, Rules(), "2025-01-01T00:00:00+00:00") == ["i5", "i4", "i3", "i2", "i1"]


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # 15:00Z and 17:00Z are one UTC day but two days at +08:00 (23:00 and 01:00 next day).
        (UTC, ["b", "z"]),
        (CST, ["b", "a"]),
    ],
)
def test_daily_buckets_follow_the_policy_time_zone(zone: timezone, expected: list[str]) -> None:
    """keep_daily counts days in the policy's time zone, so the same images fall into
    different days at +00:00 and +08:00."""
    images = [
        img("z", "2025-02-28T15:00:00+00:00"),
        img("a", "2025-03-01T15:00:00+00:00"),
        img("b", "2025-03-01T17:00:00+00:00"),
    ]
    assert kept(images, Rules(keep_daily=2), "2025-03-02T00:00:00+00:00", zone) == expected


@pytest.mark.parametrize(
    ("rule", "when", "bucket"),
    [
        ("keep_weekly", "2024-12-29T12:00:00+00:00", (2024, 52, 0)),  # Sunday
        ("keep_weekly", "2024-12-30T12:00:00+00:00", (2025, 1, 0)),  # Monday: ISO 2025-W01
        ("keep_weekly", "2021-01-03T12:00:00+00:00", (2020, 53, 0)),  # ISO 2020 has 53 weeks
        ("keep_weekly", "2024-12-29T17:00:00+00:00", (2025, 1, 0)),  # Mon 01:00 at +08:00
        ("keep_monthly", "2025-01-31T20:00:00+00:00", (2025, 2, 0)),  # Feb 1 at +08:00
        ("keep_yearly", "2024-12-31T17:00:00+00:00", (2025, 0, 0)),  # New Year at +08:00
        ("keep_daily", "2025-03-01T15:59:59+00:00", (2025, 3, 1)),
        ("keep_daily", "2025-03-01T16:00:00+00:00", (2025, 3, 2)),
    ],
)
def test_calendar_buckets_at_plus_eight(rule: str, when: str, bucket: tuple[int, ...]) -> None:
    """Week, month, year and day buckets at +08:00 across ISO-year, month and day edges."""
    assert bucket_key(rule, at(when), CST) == bucket


def test_weekly_keeps_newest_of_each_iso_week_across_the_year_boundary() -> None:
    """keep_weekly 2 keeps Monday 2024-12-30 (ISO 2025-W01) and Sunday 2024-12-29 (W52),
    not the older days of W52."""
    images = dailies(date(2024, 12, 26), date(2024, 12, 30), UTC)
    assert kept(images, Rules(keep_weekly=2), "2024-12-31T00:00:00+00:00") == [
        "2024-12-30",
        "2024-12-29",
    ]


def test_monthly_counts_only_months_that_have_images() -> None:
    """As restic defines it: the last N months *with* images, so a gap month is skipped."""
    images = [
        img("jan", "2025-01-15T00:00:00+00:00"),
        img("mar-1", "2025-03-01T00:00:00+00:00"),
        img("mar-20", "2025-03-20T00:00:00+00:00"),
        img("nov-24", "2024-11-30T00:00:00+00:00"),
    ]
    assert kept(images, Rules(keep_monthly=2), "2025-03-21T00:00:00+00:00") == ["mar-20", "jan"]


def test_cbr_like_policy_over_a_year_of_dailies() -> None:
    """7 dailies, 4 weeklies and 12 monthlies over a year of daily images at +08:00 keep
    20: the last week, three older week ends and eleven older month ends."""
    images = dailies(date(2025, 1, 1), date(2025, 12, 31), CST)
    rules = Rules(keep_daily=7, keep_weekly=4, keep_monthly=12)
    result = kept(images, rules, "2025-12-31T02:00:00+08:00", CST)
    month_ends = [
        "2025-11-30",
        "2025-10-31",
        "2025-09-30",
        "2025-08-31",
        "2025-07-31",
        "2025-06-30",
        "2025-05-31",
        "2025-04-30",
        "2025-03-31",
        "2025-02-28",
        "2025-01-31",
    ]
    last_week = [f"2025-12-{d}" for d in range(31, 24, -1)]
    assert result == [*last_week, "2025-12-21", "2025-12-14", *month_ends]


def test_each_rule_is_named_in_kept_by() -> None:
    """An image kept by several rules names every one of them; one kept by none names all
    configured rules that no longer keep it."""
    images = dailies(date(2025, 3, 1), date(2025, 3, 10), UTC)
    rules = Rules(keep=1, keep_daily=3, keep_weekly=2)
    decisions = {d.image_id: d for d in decide(images, rules, at("2025-03-10T03:00+00:00"), UTC)}
    assert decisions["2025-03-10"].kept_by == ("keep", "keep_daily", "keep_weekly", "newest_active")
    assert decisions["2025-03-09"].kept_by == ("keep_daily", "keep_weekly")
    assert decisions["2025-03-08"].kept_by == ("keep_daily",)
    assert decisions["2025-03-07"].delete
    assert decisions["2025-03-07"].not_kept_by == ("keep", "keep_daily", "keep_weekly")


@pytest.mark.parametrize(
    ("age", "is_kept"),
    [
        (timedelta(days=7) - timedelta(seconds=1), True),
        (timedelta(days=7), False),  # due exactly D days after it was made
        (timedelta(days=8), False),
    ],
)
def test_keep_days_measures_age_from_the_run_time(age: timedelta, is_kept: bool) -> None:
    """keep_days keeps images younger than D days, measured from the run's trigger time."""
    now = at("2025-03-10T02:00:00+08:00")
    images = [Candidate("new", now, "active"), Candidate("old", now - age, "active")]
    assert ("old" in kept(images, Rules(keep_days=7), now.isoformat())) is is_kept


def test_ties_are_broken_by_id_and_fill_one_bucket() -> None:
    """Two images of the same time: the higher ID counts as newer, and only it fills the
    day's bucket; the decision is the same on every run."""
    images = [img("a", "2025-03-01T02:00:00+00:00"), img("b", "2025-03-01T02:00:00+00:00")]
    images.append(img("c", "2025-02-28T02:00:00+00:00"))
    for order in (images, images[::-1]):
        assert kept(order, Rules(keep_daily=2), "2025-03-02T00:00:00+00:00") == ["b", "c"]


def test_newest_active_image_survives_every_rule() -> None:
    """When every image is older than keep_days, the newest active one still stays; a newer
    queued or killed image does not stand in for it."""
    images = [
        img("queued", "2025-03-09T00:00:00+00:00", "queued"),
        img("killed", "2025-03-08T00:00:00+00:00", "killed"),
        img("active-new", "2025-01-02T00:00:00+00:00"),
        img("active-old", "2025-01-01T00:00:00+00:00"),
    ]
    decisions = {
        d.image_id: d for d in decide(images, Rules(keep_days=1), at("2025-03-10T00:00Z"), UTC)
    }
    assert decisions["active-new"].kept_by == ("newest_active",)
    assert decisions["queued"].kept_by == ("in_progress",)
    assert decisions["active-old"].delete and decisions["killed"].delete


def test_killed_images_fill_no_slot_and_stay_only_inside_a_rule_span() -> None:
    """A killed image takes no daily slot; it is kept while a rule still has free slots or
    it is newer than the oldest image the rule keeps, and goes otherwise."""
    images = [
        img("d3", "2025-03-03T00:00:00+00:00"),
        img("d3-killed", "2025-03-03T01:00:00+00:00", "killed"),
        img("d2", "2025-03-02T00:00:00+00:00"),
        img("d1-killed", "2025-03-01T00:00:00+00:00", "killed"),
    ]
    assert kept(images, Rules(keep_daily=2), "2025-03-04T00:00Z") == ["d3-killed", "d3", "d2"]
    assert kept(images, Rules(keep_daily=3), "2025-03-04T00:00Z") == [
        "d3-killed",
        "d3",
        "d2",
        "d1-killed",
    ]


@pytest.mark.parametrize(
    ("keep", "after_days", "now", "expected_deleted"),
    [
        (1, 30, "2025-03-20T00:00Z", []),  # not yet 30 days old
        (1, 30, "2025-04-01T00:00Z", ["o2", "o1"]),  # exactly 30 days after o2
        (0, 30, "2025-04-02T00:00Z", ["o3", "o2", "o1"]),  # M = 0: all, once 30 days old
        (0, 0, "2025-03-05T00:00Z", ["o3", "o2", "o1"]),
        (5, 0, "2025-03-05T00:00Z", []),
    ],
)
def test_orphan_rule_keeps_m_and_deletes_the_rest_once_d_days_old(
    keep: int, after_days: int, now: str, expected_deleted: list[str]
) -> None:
    """The orphan rule keeps the M newest and deletes the others once at least D days old."""
    images = [
        img("o1", "2025-03-01T00:00:00+00:00"),
        img("o2", "2025-03-02T00:00:00+00:00"),
        img("o3", "2025-03-03T00:00:00+00:00"),
    ]
    decisions = decide_orphans(images, Orphans(keep, after_days), at(now))
    assert [d.image_id for d in decisions if d.delete] == expected_deleted
    assert all(d.not_kept_by == ("orphans",) for d in decisions if d.delete)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("26h", timedelta(hours=26)),
        ("8d", timedelta(days=8)),
        ("90m", timedelta(minutes=90)),
        ("0h", timedelta(0)),
        ("26", None),
        ("1.5h", None),
        ("-1d", None),
        ("1w", None),
        ("h", None),
        (" 1h", None),
    ],
)
def test_durations(text: str, expected: timedelta | None) -> None:
    """Durations are <integer><m|h|d>, nothing else."""
    assert parse_duration(text) == expected


def test_staleness_is_age_beyond_the_limit_or_no_image() -> None:
    """A volume is stale when its newest active image is older than the limit, or missing."""
    now = at("2025-03-10T02:00:00+00:00")
    limit = timedelta(hours=26)
    assert is_stale(None, now, limit)
    assert not is_stale(now - limit, now, limit)
    assert is_stale(now - limit - timedelta(seconds=1), now, limit)


def test_copy_room_leaves_one_tag_after_the_function_own() -> None:
    """Of IMS's 10 tags, 5 provenance, reported, orphaned and 2 copy-state tags leave 1."""
    assert COPY_ROOM == 1


def test_copied_tags_take_the_listed_order_and_name_what_does_not_fit() -> None:
    """Listed keys are taken in order while room lasts; too long, reserved or unroomed keys
    are named as dropped, and keys the volume lacks are neither."""
    volume = {"app": "shop", "env": "prod", "evs-export": "x", "k" * 37: "v", "long": "v" * 44}
    chosen, dropped = copied_tags(volume, ("long", "env", "app", "missing", "evs-export"))
    assert chosen == {"env": "prod"}
    assert dropped == ("long", "app", "evs-export")
    chosen, dropped = copied_tags(volume, True, room=3)
    assert chosen == {"app": "shop", "env": "prod"}
    assert dropped == ("evs-export", "k" * 37, "long")
    assert copied_tags(volume, False) == ({}, ())


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("a" * 36, "v" * 43, True),
        ("a" * 37, "v", False),
        ("a", "v" * 44, False),
        ("a", "x=y", False),
        ("a/b", "v", False),
        ("EVS-EXPORT-x", "v", False),
        ("a", "", True),
    ],
)
def test_copyable_follows_ims_tag_rules(key: str, value: str, ok: bool) -> None:
    """A volume tag is copied only as IMS would take it, and never over the function's own."""
    assert copyable(key, value) is ok


def test_killed_images_inside_keep_days_stay_and_older_ones_go() -> None:
    """Under keep_days a killed image younger than D days stays; an older one goes."""
    images = [
        img("active", "2025-03-09T00:00:00+00:00"),
        img("killed-new", "2025-03-08T00:00:00+00:00", "killed"),
        img("killed-old", "2025-03-01T00:00:00+00:00", "killed"),
    ]
    assert kept(images, Rules(keep_days=3), "2025-03-10T00:00Z") == ["active", "killed-new"]
