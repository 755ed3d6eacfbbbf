"""Plans to concrete export orders: selection (volume IDs, tags, servers; a union, each volume
once), rendered image names, and the checks that make a re-run export nothing new (an image
of that name exists: ``duplicate``; the volume is uploading: ``busy``).

Listings are paged and shared by the whole plan, never repeated per volume.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from function.cloud.ecs import EcsClient
from function.cloud.evs import EvsClient
from function.cloud.ims import ImsClient, holds_name
from function.cloud.records import Server, Volume
from function.errors import ApiError, ExportError
from function.model import UploadOptions
from function.names import make_unique, render
from function.tagbudget import copied_tags
from function.work import Exclude, ExportOrder, Outcome, PlanRequest, Selection

log = structlog.get_logger("evs_export.plan")

FETCH_EACH_MAX = 3  # up to this many volumes are read one by one; more, with one listing
NAME_LOOKUP_MAX = 3  # up to this many names are looked up one by one; more, with one listing


class Planner:
    def __init__(self, evs: EvsClient, ecs: EcsClient, ims: ImsClient) -> None:
        self.evs = evs
        self.ecs = ecs
        self.ims = ims
        self.notes: list[str] = []
        self.selections: dict[str, Selection] = {}  # per policy: selected, excluded, found

    def resolve(self, plan: PlanRequest) -> list[ExportOrder | Outcome]:
        """Orders (and early outcomes: not found, busy) for every volume the plan selects."""
        early: list[Outcome] = []
        servers: dict[str, Server] = {}
        volumes: dict[str, Volume] = {}
        wanted: list[str] = []

        for server_id in plan.server_ids:
            try:
                server = self.ecs.get_server(server_id)
            except ExportError as exc:
                early.append(_server_outcome(server_id, exc))
                continue
            if plan.server_tag is not None:
                key, value = plan.server_tag
                if server.tags.get(key) != value:
                    self.notes.append(f"server {server_id} is not tagged {key}={value}: left alone")
                    continue
            for volume_id in server.volume_ids:
                servers.setdefault(volume_id, server)
                wanted.append(volume_id)

        if plan.tags:
            for tagged in self.evs.volumes_by_tag(dict(plan.tags)):
                volumes[tagged.id] = tagged
                wanted.append(tagged.id)
        wanted.extend(plan.volume_ids)
        wanted = list(dict.fromkeys(wanted))
        selection = Selection(selected=len(wanted))
        if plan.exclude is not None and plan.exclude.volume_ids:
            wanted = [v for v in wanted if v not in plan.exclude.volume_ids]

        missing = [v for v in wanted if v not in volumes]
        found, lost = self._fetch(missing)
        volumes.update(found)
        early.extend(lost)
        selection.existing.update(v for v in wanted if v in volumes)
        if plan.exclude is not None:
            wanted = [
                v
                for v in wanted
                if v not in volumes or not _excluded(plan.exclude, volumes[v], servers.get(v))
            ]
        selection.excluded = selection.selected - len(wanted)
        selection.exported = [v for v in wanted if v in volumes]
        if plan.policy:
            self.selections[plan.policy] = selection

        named: list[tuple[str, str]] = []
        for volume_id in wanted:
            if volume_id not in volumes:
                continue
            volume = volumes[volume_id]
            owner = servers.get(volume_id)
            fields = {
                **plan.fields,
                "volume_id": volume_id,
                "volume_name": volume.name,
                "server_id": (owner.id if owner else volume.server_id) or "",
                "server_name": owner.name if owner else "",
                "policy": plan.policy or "",
                "disk": "system" if _is_system(volume, owner) else "data",
            }
            named.append((volume_id, render(plan.template, fields, plan.time)))
        names = make_unique(named)

        result: list[ExportOrder | Outcome] = []
        for volume_id, _ in named:
            volume = volumes[volume_id]
            owner = servers.get(volume_id)
            copied, dropped = copied_tags(dict(volume.tags), plan.copy_tags)
            order = ExportOrder(
                volume_id=volume_id,
                upload=UploadOptions.from_wire({"image_name": names[volume_id], **plan.options}),
                policy=plan.policy,
                server_id=owner.id if owner else volume.server_id,
                dry_run=plan.dry_run,
                keep=plan.keep,
                run_time=plan.time if plan.policy_rules is not None else None,
                image_tags=copied,
                tags_dropped=dropped,
            )
            if volume.status == "uploading":
                result.append(_skip(order, "busy", volume_status="uploading"))
            else:
                result.append(order)
        return [*early, *result]

    def _fetch(self, volume_ids: Sequence[str]) -> tuple[dict[str, Volume], list[Outcome]]:
        """Details of ``volume_ids``: one GET each for a few, one paged listing for more."""
        found: dict[str, Volume] = {}
        lost: list[Outcome] = []
        if not volume_ids:
            return found, lost
        if len(volume_ids) <= FETCH_EACH_MAX:
            for volume_id in volume_ids:
                try:
                    volume = self.evs.get_volume(volume_id)
                except ApiError as exc:
                    lost.append(Outcome(exc.outcome, volume_id, error=exc))
                    continue
                found[volume_id] = volume
            return found, lost
        index = {v.id: v for v in self.evs.list_volumes()}
        for volume_id in volume_ids:
            if volume_id in index:
                found[volume_id] = index[volume_id]
            else:
                error = ExportError(
                    "VolumeNotFound", f"volume {volume_id} is not in this project", http_status=404
                )
                lost.append(Outcome("rejected", volume_id, error=error))
        return found, lost

    def dedupe(self, orders: Iterable[ExportOrder]) -> dict[int, Outcome]:
        """Outcomes for orders that must not be sent: an image of that name already exists
        (``duplicate``), or a dry run (``dry_run``). Keyed by ``id(order)``."""
        todo = list(orders)
        names = list(dict.fromkeys(o.image_name for o in todo))
        existing = self._existing_images(names) if names else {}
        skipped: dict[int, Outcome] = {}
        for order in todo:
            image = existing.get(order.image_name)
            if image is not None:
                skipped[id(order)] = _skip(
                    order, "duplicate", image_id=image.get("id"), image_status=image.get("status")
                )
            elif order.dry_run:
                skipped[id(order)] = _skip(order, "dry_run")
        return skipped

    def _existing_images(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        wanted = set(names)
        if len(names) <= NAME_LOOKUP_MAX:
            images = [i for n in names for i in self.ims.list_images(name=n, __imagetype="private")]
        else:
            images = self.ims.list_images(__imagetype="private")
        return {
            str(i["name"]): i
            for i in images
            if i.get("name") in wanted and holds_name(i, i["name"])
        }


def _skip(order: ExportOrder, reason: str, **extra: Any) -> Outcome:
    return Outcome(
        "skipped",
        order.volume_id,
        order.image_name,
        reason=reason,
        order=order,
        extra={k: v for k, v in extra.items() if v is not None},
    )


def _server_outcome(server_id: str, exc: ExportError) -> Outcome:
    error = exc
    if isinstance(exc, ApiError) and exc.http_status == 404:
        error = exc.with_message(f"server {server_id} was not found ({exc.message})")
    return Outcome(exc.outcome, None, error=error, extra={"server_id": server_id})


def _excluded(exclude: Exclude, volume: Volume, server: Server | None) -> bool:
    """Whether a found volume is left out: one of the tag pairs, or a system disk."""
    if exclude.tags and exclude.tagged(dict(volume.tags)):
        return True
    return exclude.system_disks and _is_system(volume, server)


def _is_system(volume: Volume, server: Server | None) -> bool:
    if server is not None and server.system_volume_id is not None:
        return server.system_volume_id == volume.id
    return volume.bootable
