"""Resource tags in the shapes the services return them."""

from __future__ import annotations


def parse_tags(raw: object) -> dict[str, str]:
    """ECS tags come as ``["k=v", ...]``; EVS as ``{"k": "v"}``; IMS as ``[{"key","value"}]``
    (a value that is not a string reads as empty)."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    tags: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, str):
            key, _, value = item.partition("=")
            tags[key] = value
        elif isinstance(item, dict) and isinstance(item.get("key"), str):
            text = item.get("value")
            tags[item["key"]] = text if isinstance(text, str) else ""
    return tags
