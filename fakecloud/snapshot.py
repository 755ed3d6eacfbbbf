"""The cloud as JSON: a CONTRACT.md section 6 seed in (`load_seed`), the state dump out
(`dump_state`, what `FakeCloud.state()` and `GET /_fake/state` return)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fakecloud.base import parse_time

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud
    from fakecloud.ims.models import ImsBackend


def load_seed(cloud: FakeCloud, seed: Mapping[str, Any]) -> None:
    """Add the volumes, servers and images of a CONTRACT.md section 6 seed.

    `regions` (beyond CONTRACT.md) adds IMS regions: `{"cn-east-3": {"project_id": ...,
    "project_name": ... (default the region ID), "images": [...]}}`.
    """
    unknown = sorted(set(seed) - {"volumes", "servers", "images", "regions"})
    if unknown:
        raise ValueError(f"unknown seed keys {unknown!r}")
    regions = seed.get("regions", {})
    if not isinstance(regions, Mapping):
        raise ValueError("regions is an object keyed by region ID")
    for region, spec in regions.items():
        keys = {"project_id", "project_name", "images"}
        if not isinstance(spec, Mapping) or set(spec) - keys:
            raise ValueError(
                f"region {region!r}: an object with project_id, project_name and images"
            )
    with cloud.lock:
        for region, spec in regions.items():
            backend = cloud.add_region(region, spec.get("project_id"), spec.get("project_name"))
            for i in spec.get("images", []):
                _seed_image(backend, i)
        for v in seed.get("volumes", []):
            bootable = v.get("bootable", False)
            cloud.evs.add_volume(
                id=v["id"],
                name=v.get("name", ""),
                status=v.get("status", "available"),
                size=int(v.get("size", 10)),
                bootable=bootable in (True, "true", "True"),
                tags=v.get("tags") or {},
                attachments=v.get("attachments") or [],
                volume_image_metadata=v.get("volume_image_metadata") or {},
            )
        for s in seed.get("servers", []):
            stops_after = s.get("stops_after")
            if stops_after is not None and (
                isinstance(stops_after, bool) or not isinstance(stops_after, int | float)
            ):
                raise ValueError(f"server {s['id']!r}: stops_after is seconds or null")
            cloud.ecs.add_server(
                id=s["id"],
                name=s.get("name", ""),
                tags=s.get("tags") or [],
                status=s.get("status", "ACTIVE"),
                metadata=s.get("metadata") or {},
                stops_after=None if stops_after is None else float(stops_after),
            )
        for i in seed.get("images", []):
            _seed_image(cloud.ims, i)


def _seed_image(backend: ImsBackend, image: Mapping[str, Any]) -> None:
    item = dict(image)
    for key in ("created_at", "updated_at"):
        if isinstance(item.get(key), str):
            item[key] = parse_time(item[key])
    backend.add_image(**item)


def _members(backend: ImsBackend) -> dict[str, dict[str, str]]:
    """Image ID -> {member project ID -> status}, for images shared with anyone."""
    return {i.id: dict(i.members) for i in backend._images.values() if i.members}


def dump_state(cloud: FakeCloud) -> dict[str, Any]:
    """A JSON-ready dump of everything (reads here do not count as image polls)."""
    with cloud.lock:
        cloud.sweep()
        ims, jobs = cloud.ims, cloud.jobs
        return {
            "project_id": cloud.project_id,
            "project_name": cloud.project_name,
            "region": cloud.region,
            "volumes": [cloud.evs.volume_dict(v) for v in cloud.evs._volumes.values()],
            "servers": [cloud.ecs.server_dict(s) for s in cloud.ecs.servers.values()],
            "images": [ims.image_dict(i) for i in ims._images.values()],
            "members": _members(ims),
            "regions": {
                region: {
                    "project_id": backend.project_id,
                    "project_name": backend.project_name,
                    "images": [backend.image_dict(i) for i in backend._images.values()],
                    "members": _members(backend),
                }
                for region, backend in cloud.regions.items()
                if region != cloud.region
            },
            "jobs": [jobs.job_dict(j) for j in jobs.jobs.values()],
            "copy_progress": jobs.progress(),
            "smn_messages": list(cloud.smn.messages),
            "invocations": list(cloud.functiongraph.invocations),
            "request_count": len(cloud.requests),
            "requests": [
                {
                    "method": r.method,
                    "path": r.path,
                    "status": r.status,
                    "service": r.service,
                    "fault": r.fault,
                }
                for r in cloud.requests
            ],
            "faults": [f.to_dict() for f in cloud.faults],
            "iam_policy": None if cloud.iam_policy is None else cloud.iam_policy.document,
            "progress": ims.schedule.to_dict(),
        }
