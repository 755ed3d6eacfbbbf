"""TIMER trigger: ``user_event`` is a JSON string holding a backup policy (CONTRACT §4)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
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
from function.retention import Orphans, Rules, parse_duration
from function.runtime import Runtime
from function.times import parse_time
from function.work import Exclude, PlanRequest, PolicyRules, Rejection, Work

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
        return check_uuids(values)


def check_uuids(values: list[str]) -> list[str]:
    for i, value in enumerate(values):
        if not is_uuid(value):
            raise ValueError(f"item {i} ({value[:40]!r}) is not a UUID")
    return [v.lower() for v in values]  # the API's IDs are lower-case


def _check_duration(value: str) -> str:
    if parse_duration(value) is None:
        raise ValueError(
            f'{value[:20]!r} is not a duration: write <integer><m|h|d>, e.g. "26h" or "8d"'
        )
    return value


Count = Annotated[int, Field(ge=1, le=1000, strict=True)]
Duration = Annotated[StrictStr, AfterValidator(_check_duration)]


class OrphanRule(BaseModel):
    """What happens to this policy's images once their volume is gone."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    keep: int = Field(ge=0, le=1000, strict=True)
    after_days: int = Field(ge=0, le=36500, strict=True)


class ExcludeRule(BaseModel):
    """Volumes left out after ``select``."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    tags: dict[StrictStr, StrictStr | list[StrictStr]] = Field(default_factory=dict, max_length=10)
    volume_ids: list[StrictStr] = Field(default_factory=list, max_length=MAX_IDS)
    system_disks: StrictBool = False

    @field_validator("volume_ids")
    @classmethod
    def _uuids(cls, values: list[str]) -> list[str]:
        return check_uuids(values)

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_values(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise ValueError('must be an object such as {"backup": "off"}')
        for key, val in value.items():
            ok = isinstance(val, str) or (
                isinstance(val, list) and val and all(isinstance(v, str) for v in val)
            )
            if not ok:
                raise ValueError(
                    f"the value of {str(key)[:40]!r} must be a string or a non-empty list "
                    'of strings, e.g. "off" or ["off", "never"]'
                )
        return value


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
    keep_days: int | None = Field(default=None, ge=1, le=36500, strict=True)
    keep_daily: Count | None = None
    keep_weekly: Count | None = None
    keep_monthly: Count | None = None
    keep_yearly: Count | None = None
    orphans: OrphanRule | None = None
    exclude: ExcludeRule | None = None
    copy_tags: StrictBool | list[StrictStr] = False
    stale_after: Duration | None = None

    @field_validator("copy_tags", mode="before")
    @classmethod
    def _copy_tags(cls, value: object) -> object:
        if isinstance(value, bool):
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(
                'must be true (every tag of the volume) or a list of tag keys, e.g. ["app", "env"]'
            )
        if len(value) > 10 or len(set(value)) != len(value):
            raise ValueError("must list at most 10 distinct tag keys")
        return value

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
        exclude=exclude_for(policy.exclude),
        copy_tags=policy.copy_tags
        if isinstance(policy.copy_tags, bool)
        else tuple(policy.copy_tags),
        policy_rules=PolicyRules(
            rules=Rules(
                keep=policy.keep,
                keep_days=policy.keep_days,
                keep_daily=policy.keep_daily,
                keep_weekly=policy.keep_weekly,
                keep_monthly=policy.keep_monthly,
                keep_yearly=policy.keep_yearly,
            ),
            orphans=Orphans(policy.orphans.keep, policy.orphans.after_days)
            if policy.orphans is not None
            else None,
            stale_after=policy.stale_after,
        ),
    )


def exclude_for(rule: ExcludeRule | None) -> Exclude | None:
    if rule is None:
        return None
    return Exclude(
        volume_ids=frozenset(rule.volume_ids),
        tags={k: (v,) if isinstance(v, str) else tuple(v) for k, v in rule.tags.items()},
        system_disks=rule.system_disks,
    )
