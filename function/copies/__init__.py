"""Disaster-recovery copies: a timer policy's ``copies`` replicate its active images to other
regions with IMS cross-region replication, and ``share_with`` shares them with other projects
of the home region (docs/disaster-recovery.md).

Each run, after reconcile, over the same tag listing of the function's images:

1. **follow**: the replications this policy started (copy state ``job`` or ``claimed``) are
   read; a finished one is tagged in the target and reported once (``evs.copy.completed`` or
   ``evs.copy.failed``);
2. **start**: per volume and target, the active images newer than the newest one already
   copied (a volume with no copy: its newest active image, no backfill) are copied, oldest
   first, while fewer than ``MAX_IN_FLIGHT`` replications of the account's function images
   are in flight; the rest wait for a later run. An encrypted image or one over the size
   limit gets one ``evs.copy.skipped`` and no request. The claim is recorded on the source
   image before the request, so a copy is started once across runs and redeliveries;
3. **target**: one tag listing per target gives the policy's copies there: ``keep`` removes
   the older ones per volume, the newest active one is the recovery point of the run summary,
   and ``rpo`` raises ``evs.rpo.breached``;
4. **share**: active, unencrypted images are shared with ``share_with`` once.

Copy state lives on the source image, one tag per target region (``function.tagbudget``):
``evs-export-copy-<region>`` = ``<state>[.<ref>]``:

=============  ===============================================================  ===========
state          meaning                                                          ref
=============  ===============================================================  ===========
``claimed``    the request is about to be sent, or its answer was lost           epoch s
``queued``     the request was refused before any work (limit); waits again      (none)
``job``        replication running; ``evs.copy.started`` was reported           job ID
``done``       the replica is active and tagged; completed reported             replica ID
``failed``     completed with failure; failed reported                          job ID/code
``skipped``    never requested (``encrypted``, ``too_large``); skipped reported  reason
=============  ===============================================================  ===========

Overlapping runs of one policy are not supported (two runs could both claim an image).
The rules are pure functions; ``run_copies`` makes the requests.

The package: ``rules`` (the pure decisions, the copy-state tags and the events) and
``runner`` (``run_copies``: the requests). Names are re-exported here.
"""

from __future__ import annotations

from function.copies.rules import (
    CLAIM_GRACE,
    COMPLETED,
    COPY_KEY_PREFIX,
    COPY_MARKER,
    DEFAULT_SIZE_LIMIT_GB,
    FAILED,
    IN_FLIGHT_STATES,
    MAX_IN_FLIGHT,
    MAX_VALUE_CHARS,
    REFUSED_CODES,
    RPO_BREACHED,
    SHARE_BATCH,
    SIZE_LIMIT_GB,
    SKIPPED,
    SOURCE_KEY,
    SOURCE_REGION_KEY,
    SOURCE_TIME_KEY,
    STARTED,
    STARTED_STATES,
    STATES,
    CopyState,
    Replica,
    copy_event,
    copy_key,
    in_flight,
    is_shared,
    newest_copies,
    parse_replica,
    pending,
    replica_deletions,
    replica_tags,
    reported_with_share,
    rpo_breach,
    shared_value,
    size_limit,
    skip_reason,
    state_of,
)
from function.copies.runner import (
    CopyRun,
    run_copies,
)

__all__ = [
    "CLAIM_GRACE",
    "COMPLETED",
    "COPY_KEY_PREFIX",
    "COPY_MARKER",
    "DEFAULT_SIZE_LIMIT_GB",
    "FAILED",
    "IN_FLIGHT_STATES",
    "MAX_IN_FLIGHT",
    "MAX_VALUE_CHARS",
    "REFUSED_CODES",
    "RPO_BREACHED",
    "SHARE_BATCH",
    "SIZE_LIMIT_GB",
    "SKIPPED",
    "SOURCE_KEY",
    "SOURCE_REGION_KEY",
    "SOURCE_TIME_KEY",
    "STARTED",
    "STARTED_STATES",
    "STATES",
    "CopyRun",
    "CopyState",
    "Replica",
    "copy_event",
    "copy_key",
    "in_flight",
    "is_shared",
    "newest_copies",
    "parse_replica",
    "pending",
    "replica_deletions",
    "replica_tags",
    "reported_with_share",
    "rpo_breach",
    "run_copies",
    "shared_value",
    "size_limit",
    "skip_reason",
    "state_of",
]
