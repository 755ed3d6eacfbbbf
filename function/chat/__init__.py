"""Slack slash commands, pure: ``commands`` reads them (the form, the allow lists, the
grammar from one option table), ``messages`` writes the replies."""

from __future__ import annotations

from function.chat.commands import (
    MAX_TEXT_CHARS,
    ChatRequest,
    ExportCommand,
    HelpCommand,
    ServerCommand,
    SlashCommand,
    StatusCommand,
    help_text,
    is_allowed,
    parse_form,
    parse_text,
)
from function.chat.messages import MAX_BLOCKS, ephemeral, escape, results_message

__all__ = [
    "MAX_BLOCKS",
    "MAX_TEXT_CHARS",
    "ChatRequest",
    "ExportCommand",
    "HelpCommand",
    "ServerCommand",
    "SlashCommand",
    "StatusCommand",
    "ephemeral",
    "escape",
    "help_text",
    "is_allowed",
    "parse_form",
    "parse_text",
    "results_message",
]
