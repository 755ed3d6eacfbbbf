"""IMS: export progress modes, listing, filters, paging, GET, DELETE and tags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from fakecloud import FakeCloud, ManualClock
from tests.contract.conftest import PROJECT, Client


def export(client: Client, name: str = "img-1", volume: str = "vol-1") -> str:
    """Export `volume` (created when missing) and return the new image ID."""
    if volume not in client.cloud.evs.volumes:
        client.cloud.evs.add_volume(volume, size=20)
    response = client.export(volume, name)
    assert response.status_code == 202, response.text
    return str(response.json()["os-volume_upload_image"]["image_id"])


def test_immediate_progress(client: Client) -> None:
    """By default an exported image is active at once and the volume back to available."""
    image_id = export(client)
    assert client.image(image_id).json()["status"] == "active"
    assert client.cloud.evs.volumes["vol-1"].status == "available"


def test_polls_progress(client: Client) -> None:
    """In polls mode reads see queued, then saving, then active after N polls."""
    client.cloud.ims.set_progress("polls", after=3)
    image_id = export(client)
    seen = [client.image(image_id).json()["status"] for _ in range(3)]
    assert seen == ["queued", "saving", "saving"]
    assert client.cloud.evs.volumes["vol-1"].status == "uploading"
    assert client.image(image_id).json()["status"] == "active"
    assert client.cloud.evs.volumes["vol-1"].status == "available"


def test_list_hits_count_as_polls(client: Client) -> None:
    """A listing that matches the image counts as a poll, even when filtered by status."""
    client.cloud.ims.set_progress("polls", after=1)
    export(client, "img-p")
    assert client.images(("name", "img-p"), ("status", "active")).json()["images"] == []
    [image] = client.images(("name", "img-p"), ("status", "active")).json()["images"]
    assert image["status"] == "active"


def test_duration_progress(client: Client, clock: ManualClock) -> None:
    """In duration mode the image finishes once the fake clock has moved `after` seconds."""
    client.cloud.ims.set_progress("duration", after=60)
    image_id = export(client)
    assert client.image(image_id).json()["status"] == "queued"
    clock.advance(30)
    assert client.image(image_id).json()["status"] == "saving"
    assert client.cloud.evs.volumes["vol-1"].status == "uploading"
    clock.advance(30)
    assert client.cloud.ims.images[image_id].status == "active"
    assert client.cloud.evs.volumes["vol-1"].status == "available"
    assert client.image(image_id).json()["updated_at"] == "2025-01-01T00:01:00Z"


def test_killed_outcome(client: Client) -> None:
    """The outcome can be killed, globally or for one image name, and restores the volume."""
    client.cloud.ims.set_progress("polls", after=0, outcome="killed")
    assert client.image(export(client, "a")).json()["status"] == "killed"
    client.cloud.ims.set_progress("immediate")
    client.cloud.ims.set_outcome("bad-one", "killed")
    assert client.image(export(client, "bad-one")).json()["status"] == "killed"
    assert client.image(export(client, "good-one")).json()["status"] == "active"
    assert client.cloud.evs.volumes["vol-1"].status == "available"


def test_image_view(client: Client) -> None:
    """An exported image shows the IMS fields the function relies on."""
    client.cloud.evs.add_volume("vol-1", size=20, volume_image_metadata={"__os_type": "windows"})
    image_id = export(client)
    view = client.image(image_id).json()
    assert view["id"] == image_id
    assert view["name"] == "img-1"
    assert view["min_disk"] == 20
    assert view["size"] == 0
    assert view["__os_type"] == "windows"
    assert view["__imagetype"] == "private"
    assert view["visibility"] == "private"
    assert view["owner"] == PROJECT
    assert view["protected"] is False
    assert view["created_at"] == "2025-01-01T00:00:00Z"
    assert view["__data_origin"] == "volume,vol-1"


def test_get_unknown_image(client: Client) -> None:
    """GET of an unknown image is 404 IMG.0027."""
    response = client.image("nope")
    assert response.status_code == 404
    assert response.json()["error_code"] == "IMG.0027"


def seed_images(client: Client, count: int, clock: ManualClock) -> list[str]:
    """`count` active images one minute apart, oldest first."""
    ids = []
    for n in range(count):
        image = client.cloud.ims.add_image(
            name=f"img-{n}", created_at=clock() + timedelta(minutes=n)
        )
        ids.append(image.id)
    return ids


def test_list_pagination(client: Client, clock: ManualClock) -> None:
    """Listing pages newest first by limit and marker until a page is shorter than limit."""
    ids = seed_images(client, 5, clock)
    seen: list[str] = []
    query: list[tuple[str, str]] = [("limit", "2"), ("__imagetype", "private")]
    sizes = []
    while True:
        page = client.images(*query).json()["images"]
        seen += [i["id"] for i in page]
        sizes.append(len(page))
        if len(page) < 2:
            break
        query = [("limit", "2"), ("__imagetype", "private"), ("marker", seen[-1])]
    assert sizes == [2, 2, 1]
    assert seen == list(reversed(ids))


def test_list_body_is_images_only(client: Client, clock: ManualClock) -> None:
    """The listing body has only `images`, never `next`/`first` (PLATFORM.md 10.1, SDK model)."""
    seed_images(client, 3, clock)
    for query in ([("limit", "1")], [("limit", "1"), ("__imagetype", "private")], []):
        assert set(client.images(*query).json()) == {"images"}


def test_list_default_limit(client: Client, clock: ManualClock) -> None:
    """Without limit a page holds 500 images and says nothing about a next page."""
    for n in range(501):
        client.cloud.ims.add_image(name=f"i{n}")
    body = client.images().json()
    assert len(body["images"]) == 500
    assert set(body) == {"images"}
    assert len(client.images(("limit", "500")).json()["images"]) == 500


@pytest.mark.parametrize(
    "query", [("limit", "0"), ("limit", "x"), ("limit", "501"), ("marker", "nope")]
)
def test_list_bad_paging(client: Client, query: tuple[str, str]) -> None:
    """A bad limit (0, not a number, over 500) or an unknown marker is 400 in IMS's body."""
    response = client.images(query)
    assert response.status_code == 400
    assert set(response.json()) == {"error_code", "error_msg"}
    assert response.json()["error_code"].startswith("IMG.")


def test_list_filters(client: Client, clock: ManualClock) -> None:
    """name, id, status, tag (k=v or k.v), created_at and __imagetype filter the listing."""
    old = client.cloud.ims.add_image(
        name="old", tags={"policy": "nightly"}, created_at=clock() - timedelta(days=10)
    )
    new = client.cloud.ims.add_image(name="new", tags={"policy": "nightly", "volume": "v1"})
    client.cloud.ims.add_image(name="dead", status="killed")

    def names(*query: tuple[str, str]) -> list[str]:
        return sorted(i["name"] for i in client.images(*query).json()["images"])

    assert names(("name", "old")) == ["old"]
    assert names(("id", new.id)) == ["new"]
    assert names(("status", "killed")) == ["dead"]
    assert names(("tag", "policy=nightly")) == ["new", "old"]
    assert names(("tag", "policy.nightly"), ("tag", "volume=v1")) == ["new"]
    assert names(("created_at", "lt:2024-12-25T00:00:00Z")) == ["old"]
    assert names(("created_at", "gte:2025-01-01T00:00:00Z")) == ["dead", "new"]
    assert names(("__imagetype", "private"), ("name", "dead")) == ["dead"]
    assert names(("__imagetype", "gold")) == []
    assert client.images(("created_at", "before:2025")).status_code == 400
    assert old.id != new.id


def test_delete_rules(client: Client) -> None:
    """DELETE removes active/killed images; protected, queued/saving or unknown ones are refused."""
    active = client.cloud.ims.add_image(name="a")
    killed = client.cloud.ims.add_image(name="k", status="killed")
    protected = client.cloud.ims.add_image(name="p", protected=True)
    queued = client.cloud.ims.add_image(name="q", status="queued")
    saving = client.cloud.ims.add_image(name="s", status="saving")

    def delete(image_id: str) -> tuple[int, str | None]:
        response = client.call("DELETE", f"/v2/images/{image_id}", service="ims")
        return response.status_code, (response.json()["error_code"] if response.content else None)

    assert delete(active.id) == (204, None)
    assert delete(killed.id) == (204, None)
    assert delete(protected.id) == (400, "IMG.0028")
    assert delete(queued.id) == (400, "IMG.0090")
    assert delete(saving.id) == (400, "IMG.0090")
    assert delete(active.id) == (404, "IMG.0027")
    assert set(client.cloud.ims.images) == {protected.id, queued.id, saving.id}


def tag_action(client: Client, image_id: str, action: str, tags: list[dict[str, str]]) -> int:
    """POST the batch tag action and return the status."""
    path = f"/v2/{PROJECT}/images/{image_id}/tags/action"
    return client.call(
        "POST", path, service="ims", body={"action": action, "tags": tags}
    ).status_code


def test_tags_create_read_delete(client: Client) -> None:
    """Batch create upserts tags (204), GET lists them, delete removes them."""
    image = client.cloud.ims.add_image(name="t", tags={"a": "1"})
    assert (
        tag_action(
            client, image.id, "create", [{"key": "a", "value": "2"}, {"key": "b", "value": ""}]
        )
        == 204
    )
    response = client.call("GET", f"/v2/{PROJECT}/images/{image.id}/tags", service="ims")
    assert response.json() == {"tags": [{"key": "a", "value": "2"}, {"key": "b", "value": ""}]}
    assert tag_action(client, image.id, "delete", [{"key": "a"}, {"key": "zzz"}]) == 204
    assert client.cloud.ims.images[image.id].tags == {"b": ""}
    assert client.image(image.id).json()["tags"] == ["b."]


@pytest.mark.parametrize(
    "tags",
    [
        [{"key": "k" * 37, "value": "v"}],
        [{"key": "k", "value": "v" * 44}],
        [{"key": "k", "value": "a/b"}],
        [{"key": "k"}],
        [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}],
        [{"key": f"k{n}", "value": "v"} for n in range(11)],
        [],
    ],
    ids=["long-key", "long-value", "slash", "no-value", "dup-key", "eleven", "empty"],
)
def test_tag_validation(client: Client, tags: list[dict[str, str]]) -> None:
    """Tags break IMS rules (key<=36, value<=43, no '/', unique keys, <=10 per image) -> 400."""
    image = client.cloud.ims.add_image(name="t")
    assert tag_action(client, image.id, "create", tags) == 400
    assert client.cloud.ims.images[image.id].tags == {}


def test_tag_limit_counts_existing_tags(client: Client) -> None:
    """The 10-tag limit counts the image's own tags; upserting at the limit is still fine."""
    eight = {f"k{n}": "v" for n in range(8)}
    image = client.cloud.ims.add_image(name="t", tags=eight)
    three = [{"key": f"new{n}", "value": "v"} for n in range(3)]
    assert tag_action(client, image.id, "create", three) == 400
    assert client.cloud.ims.images[image.id].tags == eight
    assert tag_action(client, image.id, "create", three[:2]) == 204
    assert len(client.cloud.ims.images[image.id].tags) == 10
    assert tag_action(client, image.id, "create", [{"key": "k0", "value": "w"}]) == 204
    assert client.cloud.ims.images[image.id].tags["k0"] == "w"


def test_tag_limits_at_the_edge(client: Client) -> None:
    """A 36-character key and a 43-character value are accepted (PLATFORM.md 10.3)."""
    image = client.cloud.ims.add_image(name="t")
    assert tag_action(client, image.id, "create", [{"key": "k" * 36, "value": "v" * 43}]) == 204
    assert client.cloud.ims.images[image.id].tags == {"k" * 36: "v" * 43}


def test_tag_action_idempotent(client: Client) -> None:
    """Creating the same tags twice, or deleting an absent one, is 204 and the same state."""
    image = client.cloud.ims.add_image(name="t")
    tags = [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    assert tag_action(client, image.id, "create", tags) == 204
    assert tag_action(client, image.id, "create", tags) == 204
    assert client.cloud.ims.images[image.id].tags == {"a": "1", "b": "2"}
    assert tag_action(client, image.id, "delete", [{"key": "a"}]) == 204
    assert tag_action(client, image.id, "delete", [{"key": "a"}]) == 204
    assert client.cloud.ims.images[image.id].tags == {"b": "2"}


@pytest.mark.parametrize(
    "tags",
    [{f"k{n}": "v" for n in range(11)}, {"k" * 37: "v"}, {"k": "v" * 44}],
    ids=["eleven", "long-key", "long-value"],
)
def test_seeded_image_tags_checked(cloud: FakeCloud, tags: dict[str, str]) -> None:
    """Seeding (add_image or load_seed) an image with tags IMS would refuse raises ValueError."""
    with pytest.raises(ValueError, match=r"Tag|at most 10"):
        cloud.ims.add_image(name="t", tags=tags)
    with pytest.raises(ValueError):
        cloud.load_seed({"images": [{"id": "i1", "name": "t", "tags": tags}]})
    assert cloud.ims.images == {}


def test_tag_unknown_image(client: Client) -> None:
    """Tagging an unknown image is 404."""
    assert tag_action(client, "nope", "create", [{"key": "a", "value": "b"}]) == 404


def test_images_by_tag(client: Client) -> None:
    """resource_instances filters images by tag with string limit/offset, and counts."""
    for n in range(3):
        client.cloud.ims.add_image(name=f"i{n}", tags={"made-by": "evs-export", "n": str(n)})
    client.cloud.ims.add_image(name="other", tags={"made-by": "someone"})
    path = f"/v2/{PROJECT}/images/resource_instances/action"
    tags = [{"key": "made-by", "values": ["evs-export"]}]
    body = {"action": "filter", "tags": tags, "limit": "2", "offset": "1"}
    answer = client.call("POST", path, service="ims", body=body).json()
    assert answer["total_count"] == 3
    assert [r["resource_name"] for r in answer["resources"]] == ["i1", "i2"]
    first = answer["resources"][0]
    assert {"key": "n", "value": "1"} in first["tags"]
    count = client.call("POST", path, service="ims", body={"action": "count", "tags": tags})
    assert count.json() == {"total_count": 3}
    bad = client.call("POST", path, service="ims", body={**body, "limit": 2})
    assert bad.status_code == 400


def test_old_created_at_from_seed(client: Client) -> None:
    """Seeded images keep their created_at, parsed from ISO text."""
    client.cloud.load_seed(
        {
            "images": [
                {"id": "i1", "name": "x", "status": "active", "created_at": "2024-06-01T10:00:00Z"}
            ]
        }
    )
    assert client.image("i1").json()["created_at"] == "2024-06-01T10:00:00Z"
    assert client.cloud.ims.images["i1"].created_at == datetime(2024, 6, 1, 10, tzinfo=timezone.utc)


def test_images_by_tag_resource_shape(client: Client) -> None:
    """A tag-query resource has only the SDK's four keys; resource_detail is {status} only."""
    image = client.cloud.ims.add_image(name="i", status="killed", tags={"made-by": "x"})
    path = f"/v2/{PROJECT}/images/resource_instances/action"
    body = {"action": "filter", "tags": [{"key": "made-by", "values": ["x"]}], "limit": "5"}
    [resource] = client.call("POST", path, service="ims", body=body).json()["resources"]
    assert resource == {
        "resource_id": image.id,
        "resource_name": "i",
        "resource_detail": {"status": "killed"},
        "tags": [{"key": "made-by", "value": "x"}],
    }


def test_images_by_tag_paging_limits(client: Client) -> None:
    """The tag query's limit defaults to 10 and must be a string of at most 1000."""
    for n in range(12):
        client.cloud.ims.add_image(name=f"i{n}", tags={"made-by": "x"})
    path = f"/v2/{PROJECT}/images/resource_instances/action"
    tags = [{"key": "made-by", "values": ["x"]}]

    def query(**paging: object) -> requests.Response:
        body = {"action": "filter", "tags": tags, **paging}
        return client.call("POST", path, service="ims", body=body)

    assert len(query().json()["resources"]) == 10
    assert len(query(limit="1000").json()["resources"]) == 12
    assert len(query(limit="5", offset="10").json()["resources"]) == 2
    for bad in ({"limit": "1001"}, {"limit": 5}, {"offset": 1}, {"limit": "0"}):
        response = query(**bad)
        assert response.status_code == 400, bad
        assert set(response.json()) == {"error_code", "error_msg"}


@pytest.mark.parametrize(
    "tags",
    [
        [],
        [{"key": "k", "values": [str(n) for n in range(11)]}],
        [{"key": "k", "values": ["a", "a"]}],
    ],
    ids=["empty-list", "eleven-values", "duplicate-values"],
)
def test_images_by_tag_filter_rules(client: Client, tags: list[dict[str, object]]) -> None:
    """The tag query refuses an empty tags list, over 10 values for a key, or repeated values."""
    client.cloud.ims.add_image(name="i", tags={"k": "a"})
    path = f"/v2/{PROJECT}/images/resource_instances/action"
    response = client.call("POST", path, service="ims", body={"action": "filter", "tags": tags})
    assert response.status_code == 400
    assert response.json()["error_code"] == "IMG.0001"
    ten = [{"key": "k", "values": [str(n) for n in range(9)] + ["a"]}]
    ok = client.call("POST", path, service="ims", body={"action": "filter", "tags": ten})
    assert len(ok.json()["resources"]) == 1
