"""Writing to Slack: ephemeral replies and the message that sums up result events.

Plain text is escaped here (``&``, ``<``, ``>``), so user input can never become a mention or
a link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_BLOCKS = 50


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


def hint_for(command: str) -> str:
    """Where to look after a command that could not be read."""
    return f"Type `{command or '/evs-export'} help` for the syntax."


def status_message(image_id: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to ``status <image_id>``: the image's name and IMS status, or why not."""
    image = result.get("image")
    if not isinstance(image, dict):
        error = result.get("error") or {}
        return ephemeral(f"Image {image_id}: {error.get('message', 'not found')}")
    name, status = image.get("name", ""), image.get("status", "unknown")
    return ephemeral(f"Image {image_id} ({name}) is {status}.")


def handoff_message(server_id: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to ``server <server_id>``: the export started in the background, or not."""
    handoff = result.get("handoff") or {}
    if handoff.get("error"):
        return ephemeral(
            f"Could not start the export of server {server_id}: {handoff['error']['message']}"
        )
    return ephemeral(
        f"Exporting every disk of server {server_id}: the results will be posted here when done."
    )
