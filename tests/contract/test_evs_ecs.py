"""EVS reads (show, detail paging, tag filter) and ECS servers with their disks."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.contract.conftest import PROJECT, Client

SEED = {
    "volumes": [
        {
            "id": "sys-1",
            "name": "web-sys",
            "status": "in-use",
            "size": 40,
            "bootable": "true",
            "tags": {"backup": "daily", "env": "prod"},
            "attachments": [{"server_id": "srv-1", "device": "/dev/vda"}],
        },
        {
            "id": "data-1",
            "name": "web-data",
            "status": "in-use",
            "size": 100,
            "bootable": False,
            "tags": {"backup": "weekly"},
            "attachments": [{"server_id": "srv-1", "device": "/dev/vdb"}],
        },
        {
            "id": "free-1",
            "name": "spare",
            "status": "available",
            "size": 10,
            "bootable": False,
            "tags": {"env": "dev"},
            "attachments": [],
        },
    ],
    "servers": [
        {"id": "srv-1", "name": "web", "tags": ["evs-export=on-stop"], "status": "SHUTOFF"}
    ],
}


def test_show_volume(client: Client) -> None:
    """ShowVolume returns the volume with string bootable, attachments and tags."""
    client.cloud.load_seed(SEED)
    volume = client.evs("GET", "cloudvolumes/sys-1").json()["volume"]
    assert (volume["id"], volume["name"], volume["status"], volume["size"]) == (
        "sys-1",
        "web-sys",
        "in-use",
        40,
    )
    assert volume["bootable"] == "true"
    assert volume["tags"] == {"backup": "daily", "env": "prod"}
    [att] = volume["attachments"]
    assert (att["server_id"], att["device"], att["volume_id"], att["id"]) == (
        "srv-1",
        "/dev/vda",
        "sys-1",
        "sys-1",
    )
    assert att["attachment_id"]
    assert volume["volume_image_metadata"] == {}
    assert volume["metadata"] == {}


def test_show_unknown_volume(client: Client) -> None:
    """ShowVolume of an unknown ID is 404 EVS.5404."""
    response = client.evs("GET", "cloudvolumes/nope")
    assert response.status_code == 404
    assert response.json()["itemNotFound"]["code"] == "EVS.5404"


def test_detail_pagination(client: Client) -> None:
    """The detail list pages by limit/marker with a next link while more remain."""
    for n in range(5):
        client.cloud.evs.add_volume(f"v{n}", name=f"n{n}")
    seen: list[str] = []
    query = [("limit", "2")]
    while True:
        body = client.evs("GET", "cloudvolumes/detail", query=query).json()
        assert body["count"] == 5
        seen += [v["id"] for v in body["volumes"]]
        links = body.get("volumes_links")
        if not links:
            break
        [link] = links
        assert link["rel"] == "next"
        assert urlsplit(link["href"]).path == f"/v2/{PROJECT}/cloudvolumes/detail"
        query = parse_qsl(urlsplit(link["href"]).query)
    assert seen == [f"v{n}" for n in range(5)]


def test_detail_filters(client: Client) -> None:
    """name and status filter the detail list; count is the filtered total."""
    client.cloud.load_seed(SEED)
    body = client.evs("GET", "cloudvolumes/detail", query=[("status", "in-use")]).json()
    assert (body["count"], [v["id"] for v in body["volumes"]]) == (2, ["sys-1", "data-1"])
    assert "volumes_links" not in body
    body = client.evs("GET", "cloudvolumes/detail", query=[("name", "spare")]).json()
    assert [v["id"] for v in body["volumes"]] == ["free-1"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (("limit", "0"), "EVS.1023"),
        (("limit", "1001"), "EVS.1023"),
        (("limit", "x"), "EVS.1023"),
        (("marker", "nope"), "EVS.1024"),
    ],
)
def test_detail_bad_paging(client: Client, query: tuple[str, str], code: str) -> None:
    """An out-of-range limit or an unknown marker is 400 with an EVS code."""
    response = client.evs("GET", "cloudvolumes/detail", query=[query])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def by_tag(client: Client, body: dict[str, object]) -> dict[str, object]:
    """POST cloudvolumes/resource_instances/action."""
    response = client.evs("POST", "cloudvolumes/resource_instances/action", body=body)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def ids(result: dict[str, object]) -> list[str]:
    """The resource IDs of a tag query."""
    resources = result["resources"]
    assert isinstance(resources, list)
    return [r["resource_id"] for r in resources]


def test_volumes_by_tag(client: Client) -> None:
    """Tag filters AND across keys, OR within values; empty values means the key exists."""
    client.cloud.load_seed(SEED)
    assert ids(
        by_tag(
            client, {"action": "filter", "tags": [{"key": "backup", "values": ["daily", "weekly"]}]}
        )
    ) == ["sys-1", "data-1"]
    assert ids(
        by_tag(
            client,
            {
                "action": "filter",
                "tags": [{"key": "backup", "values": ["daily"]}, {"key": "env", "values": []}],
            },
        )
    ) == ["sys-1"]
    assert ids(by_tag(client, {"action": "filter", "tags": [{"key": "env", "values": []}]})) == [
        "sys-1",
        "free-1",
    ]
    assert ids(
        by_tag(
            client,
            {"action": "filter", "tags": [], "matches": [{"key": "resource_name", "value": "web"}]},
        )
    ) == ["sys-1", "data-1"]
    page = by_tag(client, {"action": "filter", "tags": [], "limit": 1, "offset": 1})
    assert (ids(page), page["total_count"]) == (["data-1"], 3)
    assert by_tag(client, {"action": "count", "tags": [{"key": "env", "values": ["dev"]}]}) == {
        "total_count": 1
    }
    result = by_tag(client, {"action": "filter", "tags": [{"key": "env", "values": ["dev"]}]})
    resources = result["resources"]
    assert isinstance(resources, list)
    [resource] = resources
    assert resource["resource_detail"]["id"] == "free-1"
    assert resource["tags"] == [{"key": "env", "value": "dev"}]


@pytest.mark.parametrize(
    "body",
    [
        {"action": "list"},
        {"action": "filter", "limit": "10"},
        {"action": "filter", "limit": 0},
        {"action": "filter", "tags": [{"values": ["x"]}]},
        {"action": "filter", "tags": "x"},
    ],
)
def test_volumes_by_tag_invalid(client: Client, body: dict[str, object]) -> None:
    """A bad action, a string or zero limit, or a malformed tag filter is 400."""
    response = client.evs("POST", "cloudvolumes/resource_instances/action", body=body)
    assert response.status_code == 400


def test_show_server(client: Client) -> None:
    """A server shows status, tags and its disks, bootIndex "0" only for the system disk."""
    client.cloud.load_seed(SEED)
    response = client.call("GET", f"/v1/{PROJECT}/cloudservers/srv-1", service="ecs")
    server = response.json()["server"]
    assert (server["id"], server["name"], server["status"]) == ("srv-1", "web", "SHUTOFF")
    assert server["tags"] == ["evs-export=on-stop"]
    attached = server["os-extended-volumes:volumes_attached"]
    assert [(a["id"], a["bootIndex"], a["device"]) for a in attached] == [
        ("sys-1", "0", "/dev/vda"),
        ("data-1", None, "/dev/vdb"),
    ]


def test_server_attachments(client: Client) -> None:
    """os-volume_attachments lists the server's disks from the volumes' attachments."""
    client.cloud.load_seed(SEED)
    path = f"/v1/{PROJECT}/cloudservers/srv-1/os-volume_attachments"
    body = client.call("GET", path, service="ecs").json()
    assert body == {
        "volumeAttachments": [
            {"device": "/dev/vda", "id": "sys-1", "serverId": "srv-1", "volumeId": "sys-1"},
            {"device": "/dev/vdb", "id": "data-1", "serverId": "srv-1", "volumeId": "data-1"},
        ]
    }


@pytest.mark.parametrize("tail", ["", "/os-volume_attachments"])
def test_unknown_server(client: Client, tail: str) -> None:
    """An unknown server is 404 Ecs.0114."""
    response = client.call("GET", f"/v1/{PROJECT}/cloudservers/nope{tail}", service="ecs")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "Ecs.0114", "message": "Instance[nope] could not be found."}
    }
