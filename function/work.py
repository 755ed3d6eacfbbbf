"""Typed work, the common currency between triggers, the planner and the exporter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from function.cloud.evs import Accepted
from function.errors import ExportError
from function.model import ACTION_KEY


@dataclass(frozen=True)
class ExportOrder:
    """One volume to export, with the exact wire body to send."""

    volume_id: str
    body: dict[str, Any]
    policy: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        inner = self.body[ACTION_KEY]
        assert isinstance(inner, dict)
        return inner

    @property
    def image_name(self) -> str:
        return str(self.options["image_name"])


@dataclass(frozen=True)
class Rejection:
    """An item that will not be sent, and why."""

    volume_id: str | None
    error: ExportError
    image_name: str | None = None


@dataclass
class Work:
    """What a trigger asks for: orders and rejections, in the order the caller named them."""

    trigger: str
    correlation_id: str
    items: list[ExportOrder | Rejection] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """How one volume ended in this invocation."""

    kind: str  # accepted | rejected | failed | skipped | deferred
    volume_id: str | None
    image_name: str | None = None
    accepted: Accepted | None = None
    error: ExportError | None = None
    reason: str | None = None
    order: ExportOrder | None = None
