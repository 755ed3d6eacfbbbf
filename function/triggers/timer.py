"""TIMER trigger: ``user_event`` is a JSON string holding a backup policy (CONTRACT §4)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from function.config import Settings
from function.errors import InvalidInput
from function.model import (
    ContainerFormat,
    DiskFormat,
    OsType,
    invalid_from,
    is_uuid,
    wire_options,
)
from function.names import check_template
from function.runtime import Runtime
from function.times import parse_time
from function.work import PlanRequest, Rejection, Work

NAME = "timer"
DEFAULT_TEMPLATE = "{policy}-{volume_name}-{time:%Y%m%d-%H%M}"
MAX_USER_EVENT = 4096
MAX_IDS = 1000


class Select(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    volume_ids: list[StrictStr] = Field(default_factory=list, max_length=MAX_IDS)
    tags: dict[StrictStr, StrictStr] = Field(default_factory=dict, max_length=10)
    server_ids: list[StrictStr] = Field(default_factory=list, max_length=MAX_IDS)

    @field_validator("volume_ids", "server_ids")
    @classmethod
    def _uuids(cls, values: list[str]) -> list[str]:
        for i, value in enumerate(values):
            if not is_uuid(value):
                raise ValueError(f"item {i} ({value[:40]!r}) is not a UUID")
        return [v.lower() for v in values]  # the API's IDs are lower-case


class Policy(BaseModel):
    """A backup policy; options are sent only when set."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    policy: StrictStr = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    select: Select
    image_name: StrictStr = DEFAULT_TEMPLATE
    force: StrictBool | None = None
    disk_format: DiskFormat | None = None
    container_format: ContainerFormat | None = None
    os_type: OsType | None = None
    dry_run: StrictBool = False
    keep: int | None = Field(default=None, ge=1, le=1000, strict=True)

    def wire_options(self) -> dict[str, Any]:
        """Export options under their wire keys (``os_type`` is sent as ``__os_type``)."""
        return wire_options(
            force=self.force,
            disk_format=self.disk_format,
            container_format=self.container_format,
            os_type=self.os_type,
        )


def matches(event: object) -> bool:
    return isinstance(event, Mapping) and event.get("trigger_type") == "TIMER"


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Work:
    name = event.get("trigger_name")
    correlation = (
        f"timer:{name}:{event.get('time')}" if isinstance(name, str) else runtime.request_id
    )
    work = Work(NAME, correlation[:128])
    try:
        policy = parse_policy(event.get("user_event"))
        when = parse_time(event.get("time"), "time") or runtime.clock()
    except InvalidInput as exc:
        work.items.append(Rejection(None, exc))
        return work
    work.plans.append(plan_for(policy, when))
    work.tasks.extend(["reconcile", "retention"])  # every timer run (function.lifecycle)
    return work


def parse_policy(raw: object) -> Policy:
    """The policy in ``user_event``; InvalidInput names the offending field."""
    if not isinstance(raw, str):
        raise InvalidInput("user_event", "user_event must be a JSON string holding a policy")
    if len(raw) > MAX_USER_EVENT:
        raise InvalidInput("user_event", f"user_event is longer than {MAX_USER_EVENT} characters")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput("user_event", f"user_event is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("user_event", "user_event must hold a JSON object (the policy)")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc, "user_event") from None
    check_template(policy.image_name, "user_event.image_name")
    sel = policy.select
    if not (sel.volume_ids or sel.tags or sel.server_ids):
        raise InvalidInput(
            "user_event.select", "select names nothing: give volume_ids, tags or server_ids"
        )
    return policy


def plan_for(policy: Policy, when: datetime) -> PlanRequest:
    return PlanRequest(
        policy=policy.policy,
        template=policy.image_name,
        time=when,
        options=policy.wire_options(),
        volume_ids=tuple(policy.select.volume_ids),
        tags=dict(policy.select.tags),
        server_ids=tuple(policy.select.server_ids),
        dry_run=policy.dry_run,
        keep=policy.keep,
    )
