"""The asynchronous half of a Slack ``server`` command: this function invoked itself with the
command, and posts the outcome to Slack's ``response_url``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

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


def parse(event: Mapping[str, Any], settings: Settings, runtime: Runtime) -> Exports:
    job = event.get(JOB_KEY)
    job = job if isinstance(job, Mapping) else {}
    correlation = correlation_id(job.get("correlation_id"), runtime.request_id)
    response_url = slack_url(job.get("response_url"))
    try:
        server_id = job.get("server_id")
        if not is_uuid(server_id):
            raise InvalidInput(f"{JOB_KEY}.server_id", "server_id must be a server UUID")
        template = check_template(job.get("image_name"), f"{JOB_KEY}.image_name")
        when = parse_time(job.get("time"), f"{JOB_KEY}.time") or runtime.clock()
        force = job.get("force", False)
        if not isinstance(force, bool):
            raise InvalidInput(f"{JOB_KEY}.force", "force must be true or false")
    except InvalidInput as exc:
        return Exports(NAME, correlation, items=(Rejection(None, exc),), response_url=response_url)
    disk_format = job.get("disk_format")
    options = wire_options(
        force=True if force else None,
        disk_format=disk_format if disk_format in DISK_FORMATS else None,
    )
    plan = chat_plan(template, when, options, server_ids=(str(server_id),))
    return Exports(NAME, correlation, plans=(plan,), response_url=response_url)


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


def slack_url(value: object) -> str | None:
    """Slack's response_url, only when it is an https URL of Slack's hooks host."""
    if not isinstance(value, str) or len(value) > 1024:
        return None
    parts = urlsplit(value)
    return value if parts.scheme == "https" and parts.hostname in SLACK_HOSTS else None
