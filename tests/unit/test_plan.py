"""function/plan.py: a plan's selection resolved to export orders against a small fake
planner input (in-memory EVS, ECS and IMS), and the duplicate and dry-run checks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import pytest

from function.cloud.ecs import EcsClient
from function.cloud.evs import EvsClient, upload_body
from function.cloud.ims import ImsClient
from function.cloud.records import Server, Volume
from function.errors import ApiError
from function.model import ACTION_KEY, UploadOptions
from function.plan import FETCH_EACH_MAX, NAME_LOOKUP_MAX, Planner
from function.work import Exclude, ExportOrder, Outcome, PlanRequest

WHEN = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)
SERVER = "b6d1f0c2-3e4a-4f5b-9c8d-1a2b3c4d5e6f"


def vid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


SYS, DATA, LOOSE, BUSY = vid(1), vid(2), vid(3), vid(4)


class FakeEvs(EvsClient):
    """Volumes by ID; counts the calls made."""

    def __init__(self, volumes: Mapping[str, dict[str, Any]]) -> None:
        self.volumes = dict(volumes)
        self.calls: list[str] = []

    def get_volume(self, volume_id: str) -> Volume:
        self.calls.append(f"get {volume_id}")
        if volume_id not in self.volumes:
            raise ApiError(404, "EVS.2022", f"volume {volume_id} not found")
        return Volume.from_api(self.volumes[volume_id], volume_id)

    def volumes_by_tag(self, tags: dict[str, str]) -> list[Volume]:
        self.calls.append("by_tag")
        return [
            Volume.from_api(v)
            for v in self.volumes.values()
            if all(v["tags"].get(k) == x for k, x in tags.items())
        ]

    def list_volumes(self) -> list[Volume]:
        self.calls.append("list")
        return [Volume.from_api(v) for v in self.volumes.values()]


class FakeEcs(EcsClient):
    def __init__(self, servers: Mapping[str, Server]) -> None:
        self.servers = dict(servers)

    def get_server(self, server_id: str, *, disks: bool = True) -> Server:
        if server_id not in self.servers:
            raise ApiError(404, "Ecs.0114", "not found")
        return self.servers[server_id]


class FakeIms(ImsClient):
    def __init__(self, images: list[dict[str, Any]]) -> None:
        self.images = images
        self.queries: list[dict[str, str]] = []

    def list_images(self, **filters: str) -> list[dict[str, Any]]:
        self.queries.append(filters)
        name = filters.get("name")
        return [i for i in self.images if name is None or i["name"] == name]


def volume(volume_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": volume_id, "name": name, "status": "available", "tags": {}, **extra}


def planner(images: list[dict[str, Any]] | None = None, **more: dict[str, Any]) -> Planner:
    volumes = {
        SYS: volume(SYS, "web-sys", bootable="true", attachments=[{"server_id": SERVER}]),
        DATA: volume(DATA, "web-data", tags={"backup": "daily"}),
        LOOSE: volume(LOOSE, "loose", tags={"backup": "daily", "keep": "off"}),
        BUSY: volume(BUSY, "busy", status="uploading"),
        **more,
    }
    server = Server(SERVER, "web-01", "ACTIVE", {"evs-export": "on-stop"}, (SYS, DATA), SYS)
    return Planner(FakeEvs(volumes), FakeEcs({SERVER: server}), FakeIms(images or []))


def plan(**fields: Any) -> PlanRequest:
    base: dict[str, Any] = {"policy": "p", "template": "{policy}-{volume_name}", "time": WHEN}
    base.update(fields)
    return PlanRequest(**base)


def orders(items: list[ExportOrder | Outcome]) -> dict[str, str]:
    return {i.volume_id: i.image_name for i in items if isinstance(i, ExportOrder)}


def test_volume_ids_become_orders_with_rendered_names_and_options() -> None:
    """Each listed volume is one order: its rendered name plus the plan's options."""
    items = planner().resolve(plan(volume_ids=(DATA,), options={"force": True}))
    [order] = items
    assert isinstance(order, ExportOrder)
    assert upload_body(order.upload) == {ACTION_KEY: {"image_name": "p-web-data", "force": True}}
    assert order.policy == "p"


def test_union_of_server_tags_and_ids_selects_each_volume_once() -> None:
    """Volumes named by server, tag and ID are one order each, in that order."""
    items = planner().resolve(
        plan(server_ids=(SERVER,), tags={"backup": "daily"}, volume_ids=(DATA,))
    )
    assert list(orders(items)) == [SYS, DATA, LOOSE]


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("{server_name}-{disk}", {SYS: "web-01-system", DATA: "web-01-data"}),
        ("{volume_id}", {SYS: SYS, DATA: DATA}),
        ("same", {SYS: "same-00000001", DATA: "same-00000002"}),
    ],
)
def test_server_fields_and_unique_names(template: str, names: dict[str, str]) -> None:
    """A server's disks get its name and their disk role; equal names are made unique."""
    assert orders(planner().resolve(plan(server_ids=(SERVER,), template=template))) == names


def test_missing_volume_and_server_are_early_rejections() -> None:
    """An unknown volume or server is a rejected outcome, listed before the orders."""
    items = planner().resolve(plan(server_ids=(vid(99),), volume_ids=(vid(98), DATA)))
    kinds = [(i.kind, i.volume_id) for i in items if isinstance(i, Outcome)]
    assert kinds == [("rejected", None), ("rejected", vid(98))]
    assert list(orders(items)) == [DATA]


def test_server_without_the_required_tag_is_left_alone_with_a_note() -> None:
    """With a server tag required, an untagged server gives no order and a note."""
    p = planner()
    assert p.resolve(plan(server_ids=(SERVER,), server_tag=("evs-export", "never"))) == []
    assert p.notes == [f"server {SERVER} is not tagged evs-export=never: left alone"]


def test_uploading_volume_is_skipped_busy() -> None:
    """A volume already uploading is a skipped outcome with reason busy."""
    [item] = planner().resolve(plan(volume_ids=(BUSY,)))
    assert isinstance(item, Outcome)
    assert (item.kind, item.reason, item.extra) == (
        "skipped",
        "busy",
        {"volume_status": "uploading"},
    )


@pytest.mark.parametrize(
    ("exclude", "left"),
    [
        (Exclude(volume_ids=frozenset({LOOSE})), [SYS, DATA]),
        (Exclude(tags={"keep": ("off",)}), [SYS, DATA]),
        (Exclude(system_disks=True), [DATA, LOOSE]),
    ],
)
def test_exclusions_and_selection_counts(exclude: Exclude, left: list[str]) -> None:
    """Excluded volumes give no order, and the selection records what was selected and left."""
    p = planner()
    items = p.resolve(plan(server_ids=(SERVER,), volume_ids=(LOOSE,), exclude=exclude))
    assert list(orders(items)) == left
    selection = p.selections["p"]
    assert (selection.selected, selection.excluded, selection.exported) == (3, 1, left)


def test_few_volumes_are_read_one_by_one_many_with_one_listing() -> None:
    """Up to FETCH_EACH_MAX volumes are GETs; more are one listing (unknown ones rejected)."""
    few = planner()
    few.resolve(plan(volume_ids=(SYS, DATA, LOOSE)[:FETCH_EACH_MAX]))
    assert isinstance(few.evs, FakeEvs)
    assert few.evs.calls == [f"get {v}" for v in (SYS, DATA, LOOSE)[:FETCH_EACH_MAX]]
    many = planner()
    items = many.resolve(plan(volume_ids=(SYS, DATA, LOOSE, vid(97))))
    assert isinstance(many.evs, FakeEvs)
    assert many.evs.calls == ["list"]
    [lost] = [i for i in items if isinstance(i, Outcome)]
    assert lost.error is not None and lost.error.code == "VolumeNotFound"


def order(name: str, dry_run: bool = False) -> ExportOrder:
    return ExportOrder(DATA, UploadOptions(name), dry_run=dry_run)


@pytest.mark.parametrize(
    ("images", "dry_run", "reason"),
    [
        ([{"id": "i1", "name": "img", "status": "active"}], False, "duplicate"),
        ([{"id": "i1", "name": "img", "status": "queued"}], True, "duplicate"),
        ([{"id": "i1", "name": "img", "status": "killed"}], False, None),
        ([{"id": "i1", "name": "other", "status": "active"}], False, None),
        ([], True, "dry_run"),
    ],
)
def test_dedupe_vectors(images: list[dict[str, Any]], dry_run: bool, reason: str | None) -> None:
    """A live image of the order's name skips it as duplicate, a dry run as dry_run;
    a dead image of that name does not count."""
    o = order("img", dry_run)
    skipped = planner(images).dedupe([o])
    assert (skipped[id(o)].reason if id(o) in skipped else None) == reason


def test_dedupe_looks_names_up_one_by_one_or_lists_once() -> None:
    """Up to NAME_LOOKUP_MAX names are looked up by name; more are one private listing."""
    few = planner()
    few.dedupe([order(f"n{i}") for i in range(NAME_LOOKUP_MAX)])
    assert isinstance(few.ims, FakeIms)
    assert [q.get("name") for q in few.ims.queries] == [f"n{i}" for i in range(NAME_LOOKUP_MAX)]
    many = planner()
    many.dedupe([order(f"n{i}") for i in range(NAME_LOOKUP_MAX + 1)])
    assert isinstance(many.ims, FakeIms)
    assert many.ims.queries == [{"__imagetype": "private"}]
