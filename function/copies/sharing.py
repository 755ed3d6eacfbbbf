"""Sharing a policy's active, unencrypted images with other projects of the home region,
once each (recorded on the image's reported tag)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from function.copies.rules import (
    SHARE_BATCH,
    is_shared,
    reported_with_share,
)
from function.errors import ExportError
from function.lifecycle import (
    REPORTED_KEY,
    ManagedImage,
)
from function.work import PlanRequest

if TYPE_CHECKING:
    from function.copies.runner import CopyRun


def share(run: CopyRun, plan: PlanRequest) -> None:
    """Share the policy's active, unencrypted images not yet shared with ``share_with``,
    then record it on each (``evs-export-reported`` = ``<kind>.shared-<hash>``)."""
    projects = list(plan.share_with)
    _policy, _name, groups = run.mine(plan)
    section = run.result.sections.setdefault("sharing", {"shared": 0, "not_shared": []})
    due = [
        i
        for group in groups.values()
        for i in group
        if i.status == "active" and i.managed and i.reported and not is_shared(i, projects)
    ]
    if not due or not run.budget.covers():
        return
    shareable: list[ManagedImage] = []
    for image in due:
        detail = run.detail(image)
        if detail is None:
            continue
        if str(detail.get("__system_encrypted", "0")) == "1":
            # Never shared; recorded as handled so it is not looked at every run.
            section["not_shared"].append({"image_id": image.id, "reason": "encrypted"})
            _record_share(run, image, projects)
        else:
            shareable.append(image)
    for start in range(0, len(shareable), SHARE_BATCH):
        batch = shareable[start : start + SHARE_BATCH]
        if not run.budget.covers():
            return
        try:
            run.copy.share([i.id for i in batch], projects)
        except ExportError as exc:
            run.error("share", exc, images=len(batch))
            section["error"] = exc.as_dict()
            return
        section["shared"] += sum(1 for i in batch if _record_share(run, i, projects))


def _record_share(run: CopyRun, image: ManagedImage, projects: Sequence[str]) -> bool:
    value = reported_with_share(image.reported or "completed", projects)
    try:
        run.ims.tag_image(image.id, {REPORTED_KEY: value})
    except ExportError as exc:
        run.error("record_share", exc, image_id=image.id)
        return False
    return True
