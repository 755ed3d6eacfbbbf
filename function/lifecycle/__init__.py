"""The life cycle of the images the function makes: provenance tags when an export is
accepted, then, on timer runs and ``{"action": "reconcile"}``, one listing of the function's
images by tag that serves both

* reconcile: each ``active`` image not yet reported becomes one ``evs.export.completed``
  event, each ``killed`` one ``evs.export.image_failed``; the report is recorded on the image
  itself (tag ``evs-export-reported``), so no other store is needed and no image is reported
  twice, and
* retention: a policy's rules (``keep``, ``keep_days``, calendar buckets; see
  ``function.retention``) decide, per volume, which of the images that policy made stay;
  older ``active`` and ``killed`` ones go, each an ``evs.image.deleted`` event naming the
  rules that no longer keep it. Images of volumes that no longer exist follow the policy's
  ``orphans`` rule, or, without one, are reported once (``evs.image.orphaned``, tag
  ``evs-export-orphaned``); ``stale_after`` raises ``evs.backup.stale`` for selected volumes
  whose newest active image is too old or missing.

The rules (what to report, what to delete) are pure functions over ``ManagedImage``; the
requests are made by ``run_tasks``, which stops writing when the time budget runs short
(what is left is picked up by the next run).

The package: ``tags`` (provenance), ``images`` (the listing as ``ManagedImage``), ``rules``
(the pure decisions and their events) and ``runner`` (``run_tasks``: the requests, within
the time budget). Names are re-exported here.
"""

from __future__ import annotations

from function.lifecycle.images import (
    ManagedImage,
    incomplete,
    just_accepted,
    parse_resource,
)
from function.lifecycle.rules import (
    DELETED,
    KeepRule,
    by_volume,
    deletions,
    duration_s,
    keep_rules,
    report_event,
    to_delete,
    to_report,
)
from function.lifecycle.runner import (
    LifecycleResult,
    run_tasks,
)
from function.lifecycle.tags import (
    MARKER_KEY,
    MARKER_VALUE,
    ORPHANED_KEY,
    POLICY_KEY,
    REPORTED_KEY,
    STARTED_KEY,
    VOLUME_KEY,
    policy_value,
    provenance_tagger,
    provenance_tags,
    tag_value,
)

__all__ = [
    "DELETED",
    "MARKER_KEY",
    "MARKER_VALUE",
    "ORPHANED_KEY",
    "POLICY_KEY",
    "REPORTED_KEY",
    "STARTED_KEY",
    "VOLUME_KEY",
    "KeepRule",
    "LifecycleResult",
    "ManagedImage",
    "by_volume",
    "deletions",
    "duration_s",
    "incomplete",
    "just_accepted",
    "keep_rules",
    "parse_resource",
    "policy_value",
    "provenance_tagger",
    "provenance_tags",
    "report_event",
    "run_tasks",
    "tag_value",
    "to_delete",
    "to_report",
]
