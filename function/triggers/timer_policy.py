"""The timer's backup policy (CONTRACT §4): the pydantic model of ``user_event``, its checks
against the settings, and the plan it becomes. Imported when a TIMER event is parsed, not
when events are routed (``function.triggers.timer``)."""

from __future__ import annotations

import json
import re
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
from function.work import (
    CopyTarget,
    Exclude,
    PlanRequest,
    PolicyRules,
)

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


DEFAULT_AGENCY = (
    "ims_admin_agency"  # copies[].agency_name when not given (docs/disaster-recovery.md)
)
MAX_COPY_TARGETS = 2  # one copy-state tag per target (function.tagbudget)
MAX_SHARES = 256  # projects an image can be shared with (PLATFORM.md 10.8)


class CopyRule(BaseModel):
    """One ``copies[]`` target: a region other than the home one, and its project."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    # At most 20 characters, so the copy-state tag key ``evs-export-copy-<region>`` fits 36.
    region: StrictStr = Field(pattern=r"^[a-z]{2,}(-[a-z0-9]+)+$", max_length=20)
    project_id: StrictStr = Field(pattern=r"^[0-9A-Za-z]{1,64}$")
    project_name: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    agency_name: StrictStr = Field(default=DEFAULT_AGENCY, min_length=1, max_length=64)
    keep: int | None = Field(default=None, ge=1, le=1000, strict=True)
    rpo: Duration | None = None
    retry_failed: StrictBool = False


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
    copies: list[CopyRule] = Field(default_factory=list, max_length=MAX_COPY_TARGETS)
    share_with: list[StrictStr] = Field(default_factory=list, max_length=MAX_SHARES)

    @field_validator("copies")
    @classmethod
    def _distinct_regions(cls, value: list[CopyRule]) -> list[CopyRule]:
        regions = [c.region for c in value]
        if len(set(regions)) != len(regions):
            raise ValueError("must name each region once (one target per region)")
        return value

    @field_validator("share_with")
    @classmethod
    def _projects(cls, value: list[str]) -> list[str]:
        for i, project in enumerate(value):
            if not re.fullmatch(r"[0-9a-fA-F]{32}", project):
                raise ValueError(f"item {i} ({project[:40]!r}) is not a project ID (32 hex digits)")
        lowered = [p.lower() for p in value]
        if len(set(lowered)) != len(lowered):
            raise ValueError("must list each project once")
        return lowered

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


def check_targets(policy: Policy, settings: Settings) -> None:
    """Copies go to other regions than the function's own, and a project is not shared with
    itself; InvalidInput names the field."""
    for i, target in enumerate(policy.copies):
        if settings.region is not None and target.region == settings.region:
            raise InvalidInput(
                f"user_event.copies.{i}.region",
                f"user_event.copies.{i}.region is the function's own region ({settings.region});"
                " copies go to another region",
            )
        if settings.project_id is not None and target.project_id == settings.project_id:
            raise InvalidInput(
                f"user_event.copies.{i}.project_id",
                f"user_event.copies.{i}.project_id is the function's own project; give the"
                f" project ID of {target.region}",
            )
    home = (settings.project_id or "").lower()
    if home and home in policy.share_with:
        i = policy.share_with.index(home)
        raise InvalidInput(
            f"user_event.share_with.{i}",
            f"user_event.share_with.{i} is the function's own project; an image is not shared"
            " with its owner",
        )


def copy_targets(policy: Policy) -> tuple[CopyTarget, ...]:
    return tuple(
        CopyTarget(
            region=c.region,
            project_id=c.project_id,
            project_name=c.project_name or c.region,
            agency_name=c.agency_name,
            keep=c.keep,
            rpo=c.rpo,
            retry_failed=c.retry_failed,
        )
        for c in policy.copies
    )


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
        copies=copy_targets(policy),
        share_with=tuple(policy.share_with),
    )


def exclude_for(rule: ExcludeRule | None) -> Exclude | None:
    if rule is None:
        return None
    return Exclude(
        volume_ids=frozenset(rule.volume_ids),
        tags={k: (v,) if isinstance(v, str) else tuple(v) for k, v in rule.tags.items()},
        system_disks=rule.system_disks,
    )
