"""Reading a Slack slash command: the form body, the allow lists and the text grammar.

The grammar (CONTRACT §4, shell-style quoting) is written once, as data: ``OPTIONS`` and
``FORMS``. The parser, ``help_text`` and the docs' table (``python -m function.chat
--markdown``) are all made from them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import parse_qs

from function.errors import InvalidInput
from function.model import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    ContainerFormat,
    DiskFormat,
    OsType,
    image_name_problem,
    is_uuid,
)
from function.names import check_template

MAX_TEXT_CHARS = 4000
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
_EXAMPLE_ID = "16369c5d-384d-4e64-b37a-56d898769362"
_PLACEHOLDER_RE = re.compile(r"\{[^{}]*\}")
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


@dataclass(frozen=True)
class Option:
    """One option of the grammar: ``key=value``, or a bare flag such as ``force``."""

    key: str
    value: str  # the placeholder in the grammar; empty for a flag
    help: str  # what it means, in the help text and the docs
    aliases: tuple[str, ...] = ()  # long forms, e.g. disk_format=
    choices: tuple[str, ...] = ()  # the allowed values (any case); empty: free text
    example: str = ""  # shown when the value is missing

    @property
    def flag(self) -> bool:
        return not self.value

    def usage(self, value: str | None = None) -> str:
        """``key=<value>`` as the grammar shows it, or the flag itself."""
        return self.key if self.flag else f"{self.key}={value or self.value}"


@dataclass(frozen=True)
class Form:
    """One command form: its head (keyword and argument) and its options, in grammar order."""

    kind: str
    head: str
    options: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)  # per-form placeholders
    example: str = ""

    def usage(self) -> str:
        """The form's line of the grammar, without the slash command."""
        shown = (f"[{OPTION[key].usage(self.values.get(key))}]" for key in self.options)
        return " ".join([self.head, *shown])

    def value_options(self) -> tuple[str, ...]:
        """The ``key=`` options this form takes, in table order."""
        return tuple(o.key for o in OPTIONS if o.key in self.options and not o.flag)


OPTIONS: tuple[Option, ...] = (
    Option(
        "name",
        '"<image name>"',
        "the image name: 1 to 128 letters, Chinese characters, digits, '-', '.', '_' and "
        "spaces; put it in quotes when it has spaces. For a server it may use "
        "{volume_name}, {volume_id}, {server_name}, {disk} and {time:%Y%m%d}.",
        aliases=("image_name",),
        example='name="nightly db"',
    ),
    Option(
        "format",
        "<disk format>",
        "the disk format",
        aliases=("disk_format",),
        choices=DISK_FORMATS,
        example="format=qcow2",
    ),
    Option(
        "container",
        "<container format>",
        "the container format",
        aliases=("container_format",),
        choices=CONTAINER_FORMATS,
        example="container=bare",
    ),
    Option(
        "os",
        "linux|windows",
        "the operating system",
        aliases=("os_type",),
        choices=("linux", "windows"),
        example="os=linux",
    ),
    Option("force", "", "export even when the volume is attached and in use"),
)
OPTION = {o.key: o for o in OPTIONS}
FORMS: tuple[Form, ...] = (
    Form(
        "export",
        "<volume_id>",
        ("name", "format", "container", "os", "force"),
        example=f'{_EXAMPLE_ID} name="nightly db" format=qcow2 force',
    ),
    Form(
        "server",
        "server <server_id>",
        ("force", "format", "name"),
        values={"name": '"<name template>"'},
        example="server 2f5e8c4a-7d1b-4c3e-9a6f-0b1c2d3e4f50 force format=qcow2",
    ),
    Form("status", "status <image_id>", example="status 8d0b1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4"),
    Form("help", "help"),
)
FORM = {f.kind: f for f in FORMS}
_ALIASES = {alias: o.key for o in OPTIONS for alias in (o.key, *o.aliases) if not o.flag}


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
        opts, force = _options(tokens[2:], FORM["server"])
        name = opts.get("name")
        if name is not None:
            check_template(name, "name")
            _check_name(_PLACEHOLDER_RE.sub("x", name))
        return ServerCommand(
            server_id=server_id,
            force=force,
            disk_format=cast("DiskFormat | None", _choice(opts, "format")),
            image_name=name,
        )
    if "=" in tokens[0] or head == "force":
        raise InvalidInput(
            "volume_id",
            f'type the volume ID first, then the options, e.g. {_EXAMPLE_ID} name="nightly db"',
        )
    volume_id = _id(tokens[0:1], "volume_id", "volume", "")
    opts, force = _options(tokens[1:], FORM["export"])
    name = opts.get("name")
    if name is not None:
        _check_name(name)
    return ExportCommand(
        volume_id=volume_id,
        image_name=name,
        disk_format=cast("DiskFormat | None", _choice(opts, "format")),
        container_format=cast("ContainerFormat | None", _choice(opts, "container")),
        os_type=cast("OsType | None", _choice(opts, "os")),
        force=force,
    )


def listed(values: tuple[str, ...]) -> str:
    """Allowed values as every reply and the docs show them: ``vhd, zvhd, raw``."""
    return ", ".join(values)


def help_text(command: str = "/evs-export") -> str:
    """The grammar with examples, as plain text (``ephemeral`` escapes it for Slack)."""
    grammar = "".join(f"{command} {form.usage()}\n" for form in FORMS)
    bullets = "".join(f"• {_option_help(option)}\n" for option in OPTIONS)
    examples = "\n".join(f"`{command} {form.example}`" for form in FORMS if form.example)
    return (
        "Export EVS volumes to IMS private images.\n"
        f"```\n{grammar}```\nOptions:\n{bullets}Examples:\n{examples}"
    )


def markdown(command: str = "/evs-export") -> str:
    """The grammar and the option table for ``docs/triggers.md``, from the same data."""
    grammar = "".join(f"{command} {form.usage()}\n" for form in FORMS)
    rows = [
        "| option | long form | command | value |",
        "|---|---|---|---|",
    ]
    for option in OPTIONS:
        forms = ", ".join(f.kind for f in FORMS if option.key in f.options)
        aliases = ", ".join(f"`{a}=`" if not option.flag else f"`{a}`" for a in option.aliases)
        value = option.help if not option.choices else f"{option.help}: {listed(option.choices)}"
        key = f"`{option.key}`" if option.flag else f"`{option.key}=`"
        rows.append(f"| {key} | {aliases or '-'} | {forms} | {value} |")
    return f"```\n{grammar}```\n\n" + "\n".join(rows) + "\n"


def _option_help(option: Option) -> str:
    if option.flag:
        return f"{option.key}: {option.help}"
    if option.key == "os":  # two values read as words
        return f"{option.key}= {option.help}: {' or '.join(option.choices)}"
    if option.choices:
        return f"{option.key}= {option.help}: {listed(option.choices)}"
    return f"{option.key}= {option.help}"


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


def _options(tokens: list[str], form: Form) -> tuple[dict[str, str], bool]:
    allowed, usage = form.value_options(), form.head
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
                name, f"{key} needs a value, with no spaces around '=': e.g. {OPTION[name].example}"
            )
        if name in values:
            raise InvalidInput(name, f"{name}= is given twice; give it once")
        values[name] = value
    return values, force


def _choice(options: Mapping[str, str], name: str) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    choices = OPTION[name].choices
    if value.lower() not in choices:
        raise InvalidInput(
            name, f"{name}={_shown(value)} is not allowed; use one of {listed(choices)}"
        )
    return value.lower()


def _check_name(name: str) -> None:
    problem = image_name_problem(name)
    if problem is not None:
        raise InvalidInput("name", problem.replace("image_name", "name", 1))
