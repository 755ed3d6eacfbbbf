"""The asynchronous half of a Slack ``server`` command: this function invoked itself with the
command, and posts the outcome to Slack's ``response_url``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from function.config import Settings
from function.errors import InvalidInput
from function.model import DISK_FORMATS, is_uuid, wire_options
from function.names import check_template
from function.runtime import Runtime
from function.times import parse_time
from function.triggers import CHAT_JOB_KEY as JOB_KEY
from function.work import Exports, PlanRequest, Rejection, correlation_id

NAME = "chat"
SLACK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")


def matches(event: object) -> bool:
    return isinstance(event, Mapping) and JOB_KEY in event


def slack_url(value: object) -> str | None:
    """Slack's response_url, only when it is an https URL of Slack's hooks host."""
    if not isinstance(value, str) or len(value) > 1024:
        return None
    parts = urlsplit(value)
    return value if parts.scheme == "https" and parts.hostname in SLACK_HOSTS else None


def _lenient_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _server_id(value: object) -> str:
    if not is_uuid(value):
        raise InvalidInput(f"{JOB_KEY}.server_id", "server_id must be a server UUID")
    return str(value)


def _force(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{JOB_KEY}.force", "force must be true or false")
    return value


class JobEnvelope(BaseModel):
    """What a chat job's answer needs even when the job is broken: where to post it and the
    correlation. Never fails: a malformed value reads as absent."""

    model_config = ConfigDict(defer_build=True)

    response_url: Annotated[str | None, BeforeValidator(slack_url)] = None
    correlation_id: Annotated[str | None, BeforeValidator(_lenient_str)] = None


class ChatJob(JobEnvelope):
    """The chat job event ``{"evs_export_chat_job": {...}}``: ``chat`` builds it with
    ``event()``, this trigger parses it with ``model_validate``. A broken field raises
    InvalidInput naming it (checked in declaration order, the first one wins)."""

    server_id: Annotated[str, BeforeValidator(_server_id)] = Field(
        default=None, validate_default=True
    )
    image_name: Annotated[
        str, BeforeValidator(lambda v: check_template(v, f"{JOB_KEY}.image_name"))
    ] = Field(default=None, validate_default=True)
    time: Annotated[
        datetime | None, BeforeValidator(lambda v: parse_time(v, f"{JOB_KEY}.time"))
    ] = None
    force: Annotated[bool, BeforeValidator(_force)] = False
    disk_format: Annotated[
        str | None, BeforeValidator(lambda v: v if v in DISK_FORMATS else None)
    ] = None
    user_id: Annotated[str | None, BeforeValidator(_lenient_str)] = None
    channel_id: Annotated[str | None, BeforeValidator(_lenient_str)] = None

    def event(self) -> dict[str, Any]:
        """The event, keys in the order earlier versions wrote them."""
        job = {
            "server_id": self.server_id,
            "force": self.force,
            "disk_format": self.disk_format,
            "image_name": self.image_name,
            "time": int(self.time.timestamp()) if self.time is not None else None,
            "response_url": self.response_url,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "correlation_id": self.correlation_id,
        }
        return {JOB_KEY: job}


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Exports:
    raw = event.get(JOB_KEY)
    fields = dict(raw) if isinstance(raw, Mapping) else {}
    envelope = JobEnvelope.model_validate(fields)
    correlation = correlation_id(envelope.correlation_id, runtime.request_id)
    try:
        job = ChatJob.model_validate(fields)
    except InvalidInput as exc:
        return Exports(
            NAME, correlation, items=(Rejection(None, exc),), response_url=envelope.response_url
        )
    options = wire_options(force=True if job.force else None, disk_format=job.disk_format)
    when = job.time or runtime.clock()
    plan = chat_plan(job.image_name, when, options, server_ids=(job.server_id,))
    return Exports(NAME, correlation, plans=(plan,), response_url=envelope.response_url)


def chat_plan(
    template: str,
    when: datetime,
    options: Mapping[str, Any],
    *,
    volume_ids: tuple[str, ...] = (),
    server_ids: tuple[str, ...] = (),
) -> PlanRequest:
    """The plan of a chat export: a volume (the command itself) or a server's disks (here)."""
    return PlanRequest(
        policy="chat",
        template=template,
        time=when,
        options=options,
        volume_ids=volume_ids,
        server_ids=server_ids,
    )
