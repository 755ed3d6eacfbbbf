"""Typed work, the common currency between triggers, the planner and the exporter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from function.cloud.records import Accepted
from function.errors import ExportError
from function.model import UploadOptions
from function.retention import Orphans, Rules


@dataclass(frozen=True)
class ExportOrder:
    """One volume to export, with its typed upload options. ``attempts`` and
    ``ambiguous`` travel with an order handed on to a continuation: the export attempts
    already spent on it, and whether one of them may have made an image (then the next
    attempt looks for the image before sending)."""

    volume_id: str
    upload: UploadOptions
    policy: str | None = None
    # server_id and keep are only carried into the continuation event, whose JSON has
    # always held them (nothing reads them back).
    server_id: str | None = None
    dry_run: bool = False
    keep: int | None = None
    attempts: int = 0
    ambiguous: bool = False
    run_time: datetime | None = None  # a policy run's trigger time, recorded on the image
    image_tags: Mapping[str, str] = field(default_factory=dict)  # volume tags to copy
    tags_dropped: tuple[str, ...] = ()  # volume tags copy_tags asked for that do not fit

    @property
    def image_name(self) -> str:
        return self.upload.image_name


@dataclass(frozen=True)
class Rejection:
    """An item that will not be sent, and why."""

    volume_id: str | None
    error: ExportError
    image_name: str | None = None


@dataclass(frozen=True)
class Exclude:
    """Volumes a policy leaves out after ``select``: by ID, by any one tag pair, system disks."""

    volume_ids: frozenset[str] = frozenset()
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    system_disks: bool = False

    def tagged(self, tags: Mapping[str, str]) -> bool:
        return any(tags.get(key) in values for key, values in self.tags.items())


@dataclass
class Selection:
    """What a plan's selection came to: volumes ``select`` matched, how many of them the
    exclusions left out, and the IDs of those found to exist (excluded ones included)."""

    selected: int = 0
    excluded: int = 0
    existing: set[str] = field(default_factory=set)
    exported: list[str] = field(default_factory=list)  # found and not excluded, in order


@dataclass(frozen=True)
class PlanRequest:
    """A selection to resolve against the cloud (timer policy, decommission, CTS), with the
    image name template and the export options every selected volume gets."""

    policy: str | None
    template: str
    time: datetime
    options: Mapping[str, Any] = field(default_factory=dict)  # wire keys, without image_name
    volume_ids: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    server_ids: tuple[str, ...] = ()
    server_tag: tuple[str, str] | None = None  # only servers carrying this tag (CTS)
    fields: Mapping[str, str] = field(default_factory=dict)  # more template fields
    dry_run: bool = False
    keep: int | None = None
    # Export a server's disks only once it is SHUTOFF, waiting until then (CTS stopServer).
    stop_deadline: datetime | None = None
    exclude: Exclude | None = None
    copy_tags: bool | tuple[str, ...] = False  # True: all of the volume's tags
    policy_rules: PolicyRules | None = None  # retention, orphans, stale alerts (timer)
    copies: tuple[CopyTarget, ...] = ()  # disaster-recovery copies (function.copies)
    share_with: tuple[str, ...] = ()  # project IDs its images are shared with


@dataclass(frozen=True)
class CopyTarget:
    """One region a timer policy's images are replicated to (``copies[]``, function.copies)."""

    region: str
    project_id: str
    project_name: str
    agency_name: str
    keep: int | None = None
    rpo: str | None = None  # as written, e.g. "26h"
    retry_failed: bool = False


@dataclass(frozen=True)
class PolicyRules:
    """A timer policy's life-cycle keys beyond ``keep`` (see function.retention)."""

    rules: Rules = field(default_factory=lambda: Rules())
    orphans: Orphans | None = None
    stale_after: str | None = None  # as written, e.g. "26h"


Task = Literal["reconcile", "retention"]  # life-cycle work (function.lifecycle)
Respond = Callable[[dict[str, Any]], dict[str, Any]]  # shapes the return value (APIG, Slack)
MAX_CORRELATION = 128


def correlation_id(value: object, fallback: str | Callable[[], str]) -> str:
    """``value`` when it is a non-empty string, else ``fallback`` (read only then); cut to
    128 characters."""
    if isinstance(value, str) and value:
        return value[:MAX_CORRELATION]
    return (fallback if isinstance(fallback, str) else fallback())[:MAX_CORRELATION]


@dataclass(frozen=True)
class Exports:
    """Export work: orders, rejections and outcomes (``items``) and plans, in the order the
    caller named them, with the life-cycle ``tasks``. ``respond`` shapes the return value."""

    trigger: str
    correlation_id: str
    items: tuple[ExportOrder | Rejection | Outcome, ...] = ()
    plans: tuple[PlanRequest, ...] = ()
    tasks: frozenset[Task] = frozenset()
    note: str | None = None
    respond: Respond | None = None
    response_url: str | None = None  # Slack's reply URL for chat-triggered work
    hop: int = 0  # place in a chain of continuations (0: the first invocation)


@dataclass(frozen=True)
class Reply:
    """Answered at once (a signature failure, a 4xx, a Slack help text)."""

    trigger: str
    correlation_id: str
    response: dict[str, Any]


@dataclass(frozen=True)
class HandOff:
    """An event to run in an asynchronous invocation of this function, and how to answer."""

    trigger: str
    correlation_id: str
    event: dict[str, Any]
    respond: Respond


@dataclass(frozen=True)
class ImageQuery:
    """One image whose IMS status the reply shows."""

    trigger: str
    correlation_id: str
    image_id: str
    respond: Respond


Work = Exports | Reply | HandOff | ImageQuery


OutcomeKind = Literal["accepted", "rejected", "failed", "skipped", "deferred"]


@dataclass(frozen=True)
class Outcome:
    """How one volume ended in this invocation."""

    kind: OutcomeKind
    volume_id: str | None
    image_name: str | None = None
    accepted: Accepted | None = None
    error: ExportError | None = None
    reason: str | None = None
    order: ExportOrder | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
