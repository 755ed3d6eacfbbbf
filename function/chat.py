"""Slack slash commands, pure: the form body, the allow lists, the text grammar and replies.

Grammar (CONTRACT §4), with shell-style quoting::

    <volume_id> [name="<image name>"] [format=<disk_format>] [container=<container_format>]
                [os=<linux|windows>] [force]
    server <server_id> [force] [format=<disk_format>] [name="<name template>"]
    status <image_id>
    help

Replies are Slack messages: plain text is escaped here (``&``, ``<``, ``>``), so user input
can never become a mention or a link.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

from function.errors import InvalidInput
from function.model import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    OS_TYPES,
    ContainerFormat,
    DiskFormat,
    OsType,
    image_name_problem,
    is_uuid,
)
from function.names import check_template

MAX_TEXT_CHARS = 4000
MAX_BLOCKS = 50
_MAX_FIELD_CHARS = {
    "team_id": 64,
    "channel_id": 64,
    "user_id": 64,
    "user_name": 256,
    "command": 64,
    "text": MAX_TEXT_CHARS,
    "response_url": 2048,
    "trigger_id": 256,
    "ssl_check": 8,
}
_MAX_FORM_FIELDS = 64
_T = TypeVar("_T")
_EXAMPLE_ID = "16369c5d-384d-4e64-b37a-56d898769362"
_PLACEHOLDER_RE = re.compile(r"\{[^{}]*\}")
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})

_DISK: dict[str, DiskFormat] = {
    "vhd": "vhd",
    "zvhd": "zvhd",
    "zvhd2": "zvhd2",
    "raw": "raw",
    "qcow2": "qcow2",
}
_CONTAINER: dict[str, ContainerFormat] = {
    "ami": "ami",
    "ari": "ari",
    "aki": "aki",
    "ovf": "ovf",
    "bare": "bare",
}
_OS: dict[str, OsType] = {"linux": "linux", "windows": "windows"}
_ALIASES = {
    "name": "name",
    "image_name": "name",
    "format": "format",
    "disk_format": "format",
    "container": "container",
    "container_format": "container",
    "os": "os",
    "os_type": "os",
}
_EXAMPLES = {
    "name": 'name="nightly db"',
    "format": "format=qcow2",
    "container": "container=bare",
    "os": "os=linux",
}
_EXPORT_OPTIONS = ("name", "format", "container", "os")
_SERVER_OPTIONS = ("name", "format")


@dataclass(frozen=True)
class SlashCommand:
    """The fields of a slash command's form body that the function uses."""

    team_id: str
    channel_id: str
    user_id: str
    user_name: str
    command: str
    text: str
    response_url: str
    trigger_id: str
    ssl_check: bool = False


@dataclass(frozen=True)
class ExportCommand:
    """``<volume_id> [name=...] [format=...] [container=...] [os=...] [force]``."""

    volume_id: str
    image_name: str | None = None
    disk_format: DiskFormat | None = None
    container_format: ContainerFormat | None = None
    os_type: OsType | None = None
    force: bool = False


@dataclass(frozen=True)
class ServerCommand:
    """``server <server_id> [force] [format=...] [name=...]``: every disk of the server.

    ``image_name`` may be a template with ``{field}`` placeholders, checked by
    ``function.names.check_template``.
    """

    server_id: str
    force: bool = False
    disk_format: DiskFormat | None = None
    image_name: str | None = None


@dataclass(frozen=True)
class StatusCommand:
    """``status <image_id>``."""

    image_id: str


@dataclass(frozen=True)
class HelpCommand:
    """``help``, or no text at all."""


ChatRequest = ExportCommand | ServerCommand | StatusCommand | HelpCommand


def parse_form(raw_body: bytes) -> SlashCommand:
    """The slash command in a form-encoded body; InvalidInput names the field that is wrong.

    ``user_id`` and ``channel_id`` are required, except in Slack's ``ssl_check`` probe.
    """
    try:
        text = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("body", "the form body is not UTF-8 text") from None
    try:
        form = parse_qs(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError:  # also UnicodeDecodeError from a bad percent-escape
        raise InvalidInput(
            "body", "the body is not a form (application/x-www-form-urlencoded)"
        ) from None

    values: dict[str, str] = {}
    for name, limit in _MAX_FIELD_CHARS.items():
        found = form.get(name, [])
        if len(found) > 1:
            raise InvalidInput(name, f"{name} appears more than once in the form")
        value = found[0] if found else ""
        if len(value) > limit:
            raise InvalidInput(name, f"{name} is longer than {limit} characters")
        values[name] = value
    ssl_check = values["ssl_check"] == "1"
    if not ssl_check:
        for name in ("user_id", "channel_id"):
            if not values[name]:
                raise InvalidInput(name, f"{name} is missing from the slash command")
    return SlashCommand(
        team_id=values["team_id"],
        channel_id=values["channel_id"],
        user_id=values["user_id"],
        user_name=values["user_name"],
        command=values["command"],
        text=values["text"],
        response_url=values["response_url"],
        trigger_id=values["trigger_id"],
        ssl_check=ssl_check,
    )


def is_allowed(
    cmd: SlashCommand,
    allowed_users: frozenset[str],
    allowed_channels: frozenset[str] | None,
) -> str | None:
    """None when the command may run; otherwise why not, in plain words.

    No users allowed means nobody may run commands. ``allowed_channels`` None means any
    channel; an empty set means none.
    """
    if not allowed_users:
        return (
            "Chat commands are turned off: nobody is allowed to run them. "
            "An admin can set CHAT_ALLOWED_USERS to a comma-separated list of Slack user IDs."
        )
    if cmd.user_id not in allowed_users:
        return (
            f"You are not allowed to run this command. An admin can add your user ID "
            f"{cmd.user_id} to CHAT_ALLOWED_USERS."
        )
    if allowed_channels is not None and cmd.channel_id not in allowed_channels:
        return (
            f"This command is not allowed in this channel. An admin can add the channel ID "
            f"{cmd.channel_id} to CHAT_ALLOWED_CHANNELS."
        )
    return None


def parse_text(text: str) -> ChatRequest:
    """The request in a slash command's text; InvalidInput says what to type instead."""
    if not isinstance(text, str):
        raise InvalidInput("text", "the command text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput("text", f"the command text is longer than {MAX_TEXT_CHARS} characters")
    tokens = _split(text)
    if not tokens:
        return HelpCommand()
    head = tokens[0].lower()
    if head in ("help", "-h", "--help", "?"):
        return HelpCommand()
    if head == "status":
        image_id = _id(tokens[1:2], "image_id", "image", "status")
        if len(tokens) > 2:
            raise InvalidInput(
                "text", f"status takes only an image ID; type: status <image_id>, {_EXAMPLE_ID}"
            )
        return StatusCommand(image_id)
    if head == "server":
        server_id = _id(tokens[1:2], "server_id", "server", "server")
        opts, force = _options(tokens[2:], _SERVER_OPTIONS, "server <server_id>")
        name = opts.get("name")
        if name is not None:
            check_template(name, "name")
            _check_name(_PLACEHOLDER_RE.sub("x", name))
        return ServerCommand(
            server_id=server_id,
            force=force,
            disk_format=_choice(opts, "format", _DISK),
            image_name=name,
        )
    if "=" in tokens[0] or head == "force":
        raise InvalidInput(
            "volume_id",
            f'type the volume ID first, then the options, e.g. {_EXAMPLE_ID} name="nightly db"',
        )
    volume_id = _id(tokens[0:1], "volume_id", "volume", "")
    opts, force = _options(tokens[1:], _EXPORT_OPTIONS, "<volume_id>")
    name = opts.get("name")
    if name is not None:
        _check_name(name)
    return ExportCommand(
        volume_id=volume_id,
        image_name=name,
        disk_format=_choice(opts, "format", _DISK),
        container_format=_choice(opts, "container", _CONTAINER),
        os_type=_choice(opts, "os", _OS),
        force=force,
    )


def help_text(command: str = "/evs-export") -> str:
    """The grammar with examples, as plain text (``ephemeral`` escapes it for Slack)."""
    c = command
    return (
        "Export EVS volumes to IMS private images.\n"
        "```\n"
        f'{c} <volume_id> [name="<image name>"] [format=<disk format>] '
        "[container=<container format>] [os=linux|windows] [force]\n"
        f'{c} server <server_id> [force] [format=<disk format>] [name="<name template>"]\n'
        f"{c} status <image_id>\n"
        f"{c} help\n"
        "```\n"
        "Options:\n"
        "• name= the image name: 1 to 128 letters, Chinese characters, digits, '-', '.', '_' "
        "and spaces; put it in quotes when it has spaces. For a server it may use "
        "{volume_name}, {volume_id}, {server_name}, {disk} and {time:%Y%m%d}.\n"
        f"• format= the disk format: {', '.join(DISK_FORMATS)}\n"
        f"• container= the container format: {', '.join(CONTAINER_FORMATS)}\n"
        f"• os= the operating system: {' or '.join(OS_TYPES[::-1])}\n"
        "• force: export even when the volume is attached and in use\n"
        "Examples:\n"
        f'`{c} {_EXAMPLE_ID} name="nightly db" format=qcow2 force`\n'
        f"`{c} server 2f5e8c4a-7d1b-4c3e-9a6f-0b1c2d3e4f50 force format=qcow2`\n"
        f"`{c} status 8d0b1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4`"
    )


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` as Slack requires in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A reply only the user sees. ``text`` is plain and escaped here; ``blocks`` go as given."""
    message: dict[str, Any] = {"response_type": "ephemeral", "text": escape(text)}
    if blocks is not None:
        message["blocks"] = blocks
    return message


_LABELS = {
    "evs.export.accepted": "Accepted",
    "evs.export.rejected": "Rejected",
    "evs.export.failed": "Failed",
    "evs.export.skipped": "Skipped",
    "evs.export.deferred": "Deferred",
    "evs.export.completed": "Completed",
    "evs.export.image_failed": "Image failed",
    "evs.image.deleted": "Deleted",
}
_REASONS = {
    "duplicate": "an image with this name already exists, so nothing new was made",
    "dry_run": "dry run, nothing was sent",
    "busy": "the volume is already being exported; try again later",
}
_MAX_MESSAGE_CHARS = 500


def results_message(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A Slack message for result events: a plain summary and one section per event.

    At most 50 blocks: the summary, then the events; when they do not fit, the last block
    says how many more there were.
    """
    summary = _summary(events)
    blocks: list[dict[str, Any]] = [_section(escape(summary))]
    room = MAX_BLOCKS - 1
    shown = events if len(events) <= room else events[: room - 1]
    blocks.extend(_section(_event_line(event)) for event in shown)
    if len(shown) < len(events):
        more = len(events) - len(shown)
        blocks.append(_section(f"…and {more} more; the function's log has every result."))
    return {"response_type": "ephemeral", "text": escape(summary), "blocks": blocks}


def _split(text: str) -> list[str]:
    """Shell-style words, after undoing Slack's escaping and typographic quotes."""
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    lexer = shlex.shlex(text.translate(_SMART_QUOTES), posix=True)
    lexer.whitespace_split = True
    lexer.whitespace += "\u00a0"
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:
        if "quotation" in str(exc):
            raise InvalidInput(
                "text", 'unbalanced quotes: close every quote you open, e.g. name="nightly db"'
            ) from None
        raise InvalidInput(
            "text", "a backslash at the end escapes nothing; remove it or quote the text"
        ) from None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _id(tokens: list[str], field: str, what: str, keyword: str) -> str:
    usage = f"{keyword} <{field}>" if keyword else f"<{field}> [options]"
    if not tokens:
        raise InvalidInput(
            field, f"type the {what} ID after {keyword}: {usage}, e.g. {keyword} {_EXAMPLE_ID}"
        )
    value = tokens[0]
    if not is_uuid(value):
        raise InvalidInput(
            field,
            f"{_shown(value)} is not a {what} ID: type its UUID, such as {_EXAMPLE_ID} "
            f"({usage}), or type help",
        )
    return value.lower()


def _options(
    tokens: list[str], allowed: tuple[str, ...], usage: str
) -> tuple[dict[str, str], bool]:
    values: dict[str, str] = {}
    force = False
    for token in tokens:
        key, sep, value = token.partition("=")
        lowered = key.lower()
        if lowered == "force":
            if sep:
                raise InvalidInput("force", "force takes no value: type just force")
            if force:
                raise InvalidInput("force", "force is given twice; give it once")
            force = True
            continue
        name = _ALIASES.get(lowered)
        if name is None or name not in allowed:
            options = ", ".join(f"{option}=" for option in allowed) + " and force"
            raise InvalidInput(
                "text",
                f"unknown option {_shown(token)} for {usage}; the options are {options}. "
                "Type help for examples.",
            )
        if not sep:
            raise InvalidInput(
                name, f"{key} needs a value, with no spaces around '=': e.g. {_EXAMPLES[name]}"
            )
        if name in values:
            raise InvalidInput(name, f"{name}= is given twice; give it once")
        values[name] = value
    return values, force


def _choice(options: Mapping[str, str], name: str, choices: Mapping[str, _T]) -> _T | None:
    value = options.get(name)
    if value is None:
        return None
    found = choices.get(value.lower())
    if found is None:
        raise InvalidInput(
            name, f"{name}={_shown(value)} is not allowed; use one of {', '.join(choices)}"
        )
    return found


def _check_name(name: str) -> None:
    problem = image_name_problem(name)
    if problem is not None:
        raise InvalidInput("name", problem.replace("image_name", "name", 1))


def _summary(events: list[dict[str, Any]]) -> str:
    if not events:
        return "No volumes to export."
    counts: dict[str, int] = {}
    for event in events:
        label = _label(event).lower()
        counts[label] = counts.get(label, 0) + 1
    parts = ", ".join(f"{n} {label}" for label, n in counts.items())
    noun = "result" if len(events) == 1 else "results"
    return f"{len(events)} export {noun}: {parts}."


def _label(event: Mapping[str, Any]) -> str:
    kind = str(event.get("type", ""))
    return _LABELS.get(kind) or kind.rsplit(".", 1)[-1] or "Result"


def _event_line(event: Mapping[str, Any]) -> str:
    raw = event.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    kind = str(event.get("type", ""))
    label = f"*{escape(_label(event))}*"
    volume = _code(data.get("volume_id") or event.get("subject"))
    image = _code(data.get("image_id"))
    name = _code(data.get("image_name"))
    subject = f"volume {volume}" if volume else "the request"
    if kind == "evs.export.accepted":
        line = f"{label}: {subject} → image {image or '(no ID)'}"
        if name:
            line += f" named {name}"
        status = _code(data.get("status"))
        return line + (f", status {status}" if status else "")
    if kind in ("evs.export.rejected", "evs.export.failed"):
        error = data.get("error")
        message = error.get("message") if isinstance(error, Mapping) else None
        text = str(message or "no reason was given")[:_MAX_MESSAGE_CHARS]
        return f"{label}: {subject}" + (f" ({name})" if name else "") + f": {escape(text)}"
    if kind == "evs.export.skipped":
        reason = str(data.get("reason") or "")
        words = _REASONS.get(reason, reason[:_MAX_MESSAGE_CHARS] or "no reason was given")
        return f"{label}: {subject}" + (f" ({name})" if name else "") + f": {escape(words)}"
    if kind == "evs.export.deferred":
        return f"{label}: {subject}: handed to a follow-up run, which will report the result"
    line = f"{label}: {subject}"
    if image:
        line += f", image {image}"
    if name:
        line += f" named {name}"
    return line


def _code(value: object) -> str:
    """A value as inline code (empty for nothing), safe for mrkdwn."""
    if value is None or value == "":
        return ""
    text = " ".join(str(value).split())[:200].replace("`", "'")
    return f"`{escape(text)}`"


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn[:3000]}}
