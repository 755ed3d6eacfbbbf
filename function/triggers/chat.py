"""The chat trigger: a Slack slash command (APIG, form-encoded, Slack-signed).

Replies within Slack's 3 s: a single volume is exported at once and the reply names the
image; a server's disks are handed to an asynchronous self-invocation whose outcome goes to
``response_url``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from function.apig import ApigRequest, apig_response
from function.config import Settings
from function.errors import InvalidInput
from function.model import wire_options
from function.names import check_template
from function.runtime import Runtime
from function.signatures import SignatureError, verify_slack
from function.triggers import CHAT_JOB_KEY
from function.triggers.chat_job import ChatJob, chat_plan
from function.triggers.webhook import unauthorized
from function.work import Exports, HandOff, ImageQuery, Reply, Work, correlation_id

NAME = "chat"
VOLUME_TEMPLATE = "{volume_name}-chat-{time:%Y%m%d-%H%M%S}"
SERVER_TEMPLATE = "{server_name}-{volume_name}-chat-{time:%Y%m%d-%H%M%S}"
JOB_KEY = CHAT_JOB_KEY


def matches(request: ApigRequest) -> bool:
    """A Slack request: signed by Slack, or Slack's unsigned ``ssl_check`` probe."""
    return request.header("x-slack-signature") is not None or (
        request.media_type == "application/x-www-form-urlencoded"
        and b"ssl_check=1" in request.raw_body
    )


def parse(request: ApigRequest, settings: Settings, runtime: Runtime) -> Work:
    """The work a slash command asks for, or the reply that answers it at once."""
    from function import chat
    from function.chat.messages import handoff_message, hint_for, status_message

    correlation = correlation_id(request.request_id, runtime.request_id)

    def answer(message: dict[str, Any]) -> Reply:
        return Reply(NAME, correlation, reply(message))

    if _is_ssl_check(request):
        return Reply(NAME, correlation, apig_response(200, "", {"Content-Type": "text/plain"}))
    now = int(runtime.clock().timestamp())
    try:
        verify_slack(request.raw_body, request.headers, settings.slack_signing_secret, now)
    except SignatureError as exc:
        return Reply(NAME, correlation, unauthorized(exc))
    try:
        cmd = chat.parse_form(request.raw_body)
    except InvalidInput as exc:
        return answer(chat.ephemeral(f"That command could not be read: {exc.message}"))
    refusal = chat.is_allowed(cmd, settings.chat_allowed_users, settings.chat_allowed_channels)
    if refusal is not None:
        return answer(chat.ephemeral(refusal))
    try:
        command = chat.parse_text(cmd.text)
    except InvalidInput as exc:
        return answer(chat.ephemeral(f"{exc.message}\\n{hint_for(cmd.command)}"))
    when = _request_time(request, runtime)
    if isinstance(command, chat.HelpCommand):
        return answer(chat.ephemeral(chat.help_text(cmd.command or "/evs-export")))
    if isinstance(command, chat.StatusCommand):
        image_id = command.image_id
        return ImageQuery(
            NAME,
            correlation,
            image_id,
            lambda result: reply(status_message(image_id, result)),
        )
    if isinstance(command, chat.ExportCommand):
        options = wire_options(
            force=True if command.force else None,
            disk_format=command.disk_format,
            container_format=command.container_format,
            os_type=command.os_type,
        )
        # A typed name holds no braces (the naming rules forbid them), so it renders as is.
        template = command.image_name or VOLUME_TEMPLATE
        plan = chat_plan(template, when, options, volume_ids=(command.volume_id,))
        return Exports(
            NAME,
            correlation,
            plans=(plan,),
            respond=lambda result: reply(chat.results_message(result["results"])),
        )
    try:
        check_template(command.image_name or SERVER_TEMPLATE, "name")
    except InvalidInput as exc:
        return answer(chat.ephemeral(f"{exc.message}\\n{hint_for(cmd.command)}"))
    # Built from checked values as they are (no validation: ``chat_job`` parses it).
    job = ChatJob.model_construct(
        server_id=command.server_id,
        force=command.force,
        disk_format=command.disk_format,
        image_name=command.image_name or SERVER_TEMPLATE,
        time=when,
        response_url=cmd.response_url,
        user_id=cmd.user_id,
        channel_id=cmd.channel_id,
        correlation_id=correlation,
    )
    server_id = command.server_id
    return HandOff(
        NAME,
        correlation,
        job.event(),
        lambda result: reply(handoff_message(server_id, result)),
    )


def reply(message: dict[str, Any]) -> dict[str, Any]:
    """A Slack message as the APIG response (always 200)."""
    return apig_response(200, message)


def _is_ssl_check(request: ApigRequest) -> bool:
    from function.chat.commands import parse_form

    if request.media_type != "application/x-www-form-urlencoded":
        return False
    try:
        return parse_form(request.raw_body).ssl_check
    except InvalidInput:
        return False


def _request_time(request: ApigRequest, runtime: Runtime) -> datetime:
    ts = request.header("x-slack-request-timestamp") or ""
    if ts.isascii() and ts.isdigit():
        return datetime.fromtimestamp(int(ts), timezone.utc)
    return runtime.clock()
