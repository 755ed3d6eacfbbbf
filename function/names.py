"""Image name templates: validated before use, rendered with the trigger's time, and made to
satisfy the seed's naming rules (unsafe characters replaced, trimmed, at most 128 characters,
unique per volume). Pure."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from datetime import datetime

from function.errors import InvalidInput
from function.model import IMAGE_NAME_CHARS, IMAGE_NAME_MAX

FIELDS = (
    "volume_id",
    "volume_name",
    "server_id",
    "server_name",
    "policy",
    "disk",
    "delivery",
    "time",
)
# Fields kept whole when a name must be shortened (IDs, and short machine-made values).
FIXED_FIELDS = frozenset({"volume_id", "server_id", "disk", "delivery", "time"})
MAX_TEMPLATE = 512
_UNSAFE = re.compile(rf"[^{IMAGE_NAME_CHARS}]+")
_DASHES = re.compile(r"-{2,}")
_FORMATTER = string.Formatter()
_STRFTIME_OK = re.compile(r"^(%[aAbBdHjmMpSUwWyYzZ%]|[A-Za-z0-9 ._-])*$")


def check_template(template: object, field: str = "image_name") -> str:
    """The template if every placeholder is known and well formed; else InvalidInput."""
    if not isinstance(template, str) or not template.strip():
        raise InvalidInput(field, f"{field} must be a non-empty string template")
    if len(template) > MAX_TEMPLATE:
        raise InvalidInput(field, f"{field} is longer than {MAX_TEMPLATE} characters")
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise InvalidInput(
            field, f"{field} is not a valid template ({exc}); use {{name}} fields"
        ) from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FIELDS:
            known = ", ".join(FIELDS)
            raise InvalidInput(field, f"{field} uses unknown field {{{name}}}; known: {known}")
        if conversion:
            raise InvalidInput(
                field, f"{field}: {{{name}!{conversion}}} conversions are not allowed"
            )
        if spec and name != "time":
            raise InvalidInput(
                field, f"{field}: only {{time:...}} takes a format, not {{{name}:{spec}}}"
            )
        if name == "time" and spec and not _STRFTIME_OK.fullmatch(spec):
            raise InvalidInput(
                field, f"{field}: {{time:{spec}}} is not a supported strftime format"
            )
    return template


def render(template: str, fields: Mapping[str, str], time: datetime) -> str:
    """Fill the template (``{time:%Y%m%d}`` uses strftime; bare ``{time}`` is
    ``%Y%m%d-%H%M%S``), then make the result a valid image name.

    When the name would be too long, the longest name fields are shortened, never the
    template's own text, the time or the IDs, so names of different days stay different.
    """
    fixed: list[bool] = []
    parts: list[str] = []
    for literal, name, spec, _conv in _FORMATTER.parse(template):
        parts.append(_clean(literal))
        fixed.append(True)
        if name is None:
            continue
        if name == "time":
            parts.append(_clean(time.strftime(spec or "%Y%m%d-%H%M%S")))
        else:
            parts.append(_clean(fields.get(name, "")))
        fixed.append(name in FIXED_FIELDS)
    excess = len("".join(parts)) - IMAGE_NAME_MAX
    while excess > 0:
        cuttable = [i for i, f in enumerate(fixed) if not f and parts[i]]
        if not cuttable:
            break
        longest = max(cuttable, key=lambda i: len(parts[i]))
        keep = max(1, len(parts[longest]) - excess)
        if keep == len(parts[longest]):
            break
        excess -= len(parts[longest]) - keep
        parts[longest] = parts[longest][:keep]
    return sanitize("".join(parts), fallback=fields.get("volume_id", "volume")[:8])


def _clean(text: str) -> str:
    return _DASHES.sub("-", _UNSAFE.sub("-", text))


def sanitize(name: str, fallback: str = "image") -> str:
    """Replace what the API forbids with '-', trim spaces and dashes at the ends, cut to 128."""
    cleaned = _DASHES.sub("-", _UNSAFE.sub("-", name)).strip(" -")
    cleaned = cleaned[:IMAGE_NAME_MAX].rstrip(" -")
    if cleaned:
        return cleaned
    return _UNSAFE.sub("-", f"image-{fallback}")[:IMAGE_NAME_MAX]


def make_unique(names: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Per volume ID, its name; where volumes share a name, each gets ``-<volume id prefix>``
    appended (the base cut so the whole stays within 128 characters), the prefix growing
    until the name is taken by no other volume."""
    counts: dict[str, int] = {}
    for _vid, name in names:
        counts[name] = counts.get(name, 0) + 1
    taken = {name for _vid, name in names if counts[name] == 1}
    result: dict[str, str] = {}
    for vid, name in names:
        if counts[name] > 1:
            hexid = vid.replace("-", "")
            for width in range(8, len(hexid) + 1, 4):
                suffix = "-" + hexid[:width]
                candidate = name[: IMAGE_NAME_MAX - len(suffix)].rstrip(" ") + suffix
                if candidate not in taken:
                    break
            name = candidate
        taken.add(name)
        result[vid] = name
    return result
