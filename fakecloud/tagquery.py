"""The resource_instances tag query EVS and IMS share: body validation and tag matching."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fakecloud.base import ApiError

MAX_LIMIT = 1000


def parse_tag_query(
    body: Any,
    *,
    string_numbers: bool,
    error: Callable[[str], ApiError],
    default_limit: int = MAX_LIMIT,
) -> tuple[str, list[tuple[str, list[str]]], list[tuple[str, str]], int, int]:
    """Validate a resource_instances body: action, tags, matches, limit, offset.

    EVS takes limit/offset as integers, IMS as strings holding integers (`string_numbers`);
    `default_limit` is the page size when the body sets none. `limit` is at most 1000.
    """
    if not isinstance(body, dict):
        raise error("The body must be a JSON object.")
    action = body.get("action")
    if action not in ("filter", "count"):
        raise error(f"Invalid action {action!r}; must be 'filter' or 'count'.")
    tags: list[tuple[str, list[str]]] = []
    raw_tags = body.get("tags", [])
    if not isinstance(raw_tags, list) or len(raw_tags) > 10:
        raise error("'tags' must be a list of at most 10 {key, values} objects.")
    for item in raw_tags:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
            raise error(f"Invalid tag filter {item!r}: 'key' must be a non-empty string.")
        values = item.get("values", [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise error(f"Invalid tag filter {item!r}: 'values' must be a list of strings.")
        tags.append((item["key"], values))
    keys = [k for k, _ in tags]
    if len(set(keys)) != len(keys):
        raise error("Tag keys in 'tags' must be unique.")
    matches: list[tuple[str, str]] = []
    raw_matches = body.get("matches", [])
    if not isinstance(raw_matches, list):
        raise error("'matches' must be a list.")
    for item in raw_matches:
        if (
            not isinstance(item, dict)
            or item.get("key") != "resource_name"
            or not isinstance(item.get("value"), str)
        ):
            raise error(f"Invalid match {item!r}: only {{'key': 'resource_name', 'value': str}}.")
        matches.append(("resource_name", item["value"]))
    numbers: list[int] = []
    for name, default, low, high in (
        ("limit", default_limit, 1, MAX_LIMIT),
        ("offset", 0, 0, 2**31),
    ):
        raw = body.get(name)
        if raw is None:
            numbers.append(default)
            continue
        if string_numbers:
            ok = isinstance(raw, str) and re.fullmatch(r"\d+", raw) is not None
        else:
            ok = isinstance(raw, int) and not isinstance(raw, bool)
        if not ok or not low <= int(raw) <= high:
            kind = "a string holding an integer" if string_numbers else "an integer"
            raise error(f"Invalid {name} {raw!r}: must be {kind} {low}-{high}.")
        numbers.append(int(raw))
    return str(action), tags, matches, numbers[0], numbers[1]


def tags_match(have: dict[str, str], wanted: list[tuple[str, list[str]]]) -> bool:
    """Keys ANDed, values ORed within a key, an empty value list meaning the key is present."""
    return all(k in have and (not values or have[k] in values) for k, values in wanted)
