"""The seed API's request, response and error models (``os-volume_upload_image``).

Every rule of the source document is enforced here, before anything is sent. The response
and error models are tolerant of the documented inconsistencies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from function.errors import InvalidInput

# On its first validation pydantic looks for plugins through every installed distribution's
# entry points (about 10 ms of a cold start); the function uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

ACTION_KEY = "os-volume_upload_image"
DISK_FORMATS = ("vhd", "zvhd", "zvhd2", "raw", "qcow2")
CONTAINER_FORMATS = ("ami", "ari", "aki", "ovf", "bare")
OS_TYPES = ("windows", "linux")
IMAGE_NAME_MAX = 128
# Letters (ASCII), Chinese characters, digits, '-', '.', '_' and space.
IMAGE_NAME_CHARS = r"A-Za-z0-9\u4e00-\u9fff\-._ "
_IMAGE_NAME_RE = re.compile(rf"^[{IMAGE_NAME_CHARS}]+$")
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

DiskFormat = Literal["vhd", "zvhd", "zvhd2", "raw", "qcow2"]
ContainerFormat = Literal["ami", "ari", "aki", "ovf", "bare"]
OsType = Literal["windows", "linux"]


def image_name_problem(name: str) -> str | None:
    """Why ``name`` breaks the seed's naming rules, or None when it is valid."""
    if not 1 <= len(name) <= IMAGE_NAME_MAX:
        return f"image_name must be 1 to {IMAGE_NAME_MAX} characters long, got {len(name)}"
    if name[0] == " " or name[-1] == " ":
        return "image_name must not start or end with a space"
    if not _IMAGE_NAME_RE.fullmatch(name):
        bad = sorted({c for c in name if not _IMAGE_NAME_RE.fullmatch(c)})
        shown = "".join(bad[:10])
        return (
            f"image_name may hold only letters, Chinese characters, digits, '-', '.', '_' and "
            f"spaces; not {shown!r}"
        )
    return None


def wire_options(
    *,
    force: bool | None = None,
    disk_format: str | None = None,
    container_format: str | None = None,
    os_type: str | None = None,
) -> dict[str, Any]:
    """Export options under their wire keys (``os_type`` is sent as ``__os_type``); the ones
    not given are left out, so the API's defaults apply."""
    named = {
        "force": force,
        "disk_format": disk_format,
        "container_format": container_format,
        "__os_type": os_type,
    }
    return {k: v for k, v in named.items() if v is not None}


def is_uuid(value: object) -> bool:
    """True for a canonical 8-4-4-4-12 hexadecimal UUID string, the only IDs put in a path."""
    return isinstance(value, str) and _UUID_RE.fullmatch(value) is not None


class UploadImage(BaseModel):
    """The ``os-volume_upload_image`` object of the export request."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    image_name: StrictStr
    disk_format: DiskFormat | None = None
    container_format: ContainerFormat | None = None
    force: StrictBool | None = None
    os_type: OsType | None = Field(default=None, alias="__os_type")

    @field_validator("disk_format", "container_format", "force", "os_type", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null: leave the field out to use the API's default")
        return value

    @field_validator("image_name")
    @classmethod
    def _name_rules(cls, value: str) -> str:
        problem = image_name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


WIRE_KEYS = ("image_name", "disk_format", "container_format", "force", "__os_type")


@dataclass(frozen=True)
class UploadOptions:
    """One export's validated ``os-volume_upload_image`` fields (None: not set, the API's
    default applies). ``order`` holds the wire keys the caller set, in the caller's order;
    ``function.cloud.evs.upload_body`` builds the wire body from it."""

    image_name: str
    disk_format: DiskFormat | None = None
    container_format: ContainerFormat | None = None
    force: bool | None = None
    os_type: OsType | None = None
    order: tuple[str, ...] = ()

    @classmethod
    def of(cls, upload: UploadImage, order: Iterable[object] = ()) -> UploadOptions:
        """The validated model's fields, with the caller's key order."""
        return cls(
            image_name=upload.image_name,
            disk_format=upload.disk_format,
            container_format=upload.container_format,
            force=upload.force,
            os_type=upload.os_type,
            order=tuple(k for k in order if isinstance(k, str) and k in WIRE_KEYS),
        )

    @classmethod
    def from_wire(cls, options: Mapping[str, Any]) -> UploadOptions:
        """Options already checked, under their wire keys (a plan's name and options)."""
        return cls(
            image_name=str(options["image_name"]),
            disk_format=options.get("disk_format"),
            container_format=options.get("container_format"),
            force=options.get("force"),
            os_type=options.get("__os_type"),
            order=tuple(k for k in options if k in WIRE_KEYS),
        )


class ExportRequest(BaseModel):
    """A direct export: the volume and the seed's request body."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    volume_id: StrictStr
    upload: UploadImage = Field(alias=ACTION_KEY)

    @field_validator("volume_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if not is_uuid(value):
            raise ValueError(
                "volume_id must be a UUID such as 16369c5d-384d-4e64-b37a-56d898769362"
            )
        return value


def parse_export(raw: object, where: str = "") -> tuple[ExportRequest, UploadOptions]:
    """Validate one direct export; return it and its typed options (caller's key order).

    Raises InvalidInput naming the first offending field (``where`` prefixes its path).
    """
    if not isinstance(raw, Mapping):
        raise InvalidInput(where or "event", f"{where or 'the event'} must be a JSON object")
    try:
        request = ExportRequest.model_validate(raw)
    except ValidationError as exc:
        raise invalid_from(exc, where) from None
    inner = raw.get(ACTION_KEY)
    order = inner if isinstance(inner, Mapping) else None
    return request, UploadOptions.of(request.upload, order or ())


def invalid_from(exc: ValidationError, where: str = "") -> InvalidInput:
    """The first pydantic error as an InvalidInput with a dotted field path and plain words."""
    err = exc.errors(include_url=False)[0]
    loc = [_shown(str(p)) for p in err["loc"]]  # a hostile key is named, not echoed whole
    field = ".".join(([where] if where else []) + loc) or (where or "event")
    kind = err["type"]
    if kind == "missing":
        message = f"{field} is required"
    elif kind == "extra_forbidden":
        message = f"{field} is not a known field"
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        message = f"{field} must be one of {expected}"
    elif kind == "bool_type":
        message = f"{field} must be true or false (a JSON boolean)"
    elif kind in ("string_type", "model_type", "model_attributes_type", "dict_type"):
        want = "a string" if kind == "string_type" else "a JSON object"
        message = f"{field} must be {want}"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
    return InvalidInput(field, message)


class VolumeType(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    id: str | None = None
    name: str | None = None
    extra_specs: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("extra_specs", "extra_spec")
    )
    description: str | int | None = None


class UploadImageResult(BaseModel):
    """The 202 answer's ``os-volume_upload_image`` object; unknown keys are kept."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    image_id: str
    image_name: str | None = None
    status: str | None = None
    id: str | None = None
    size: int | None = None
    disk_format: str | None = None
    container_format: str | None = None
    display_description: str | None = None
    updated_at: str | None = None
    volume_type: VolumeType | None = None


class UploadImageResponse(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    result: UploadImageResult = Field(alias=ACTION_KEY)


ErrorText = Annotated[str, Field(max_length=2048)]


def parse_error_body(body: object, status: int) -> tuple[str, str]:
    """(code, message) from any documented error shape; falls back to the HTTP status.

    Shapes: ``{"<wrapper>": {"code", "message"}}`` with any wrapper key (``error``,
    ``badRequest``, ``itemNotFound``, ...), and the gateway's ``{"error_code", "error_msg"}``.
    ``code`` may be an integer.
    """
    if isinstance(body, Mapping):
        if "error_code" in body or "error_msg" in body:
            return _text(body.get("error_code"), status), _text(body.get("error_msg"), "")
        for value in body.values():
            if isinstance(value, Mapping) and ("code" in value or "message" in value):
                return _text(value.get("code"), status), _text(value.get("message"), "")
        if "code" in body or "message" in body:
            return _text(body.get("code"), status), _text(body.get("message"), "")
    return str(status), f"HTTP {status}"


def _shown(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text(value: object, default: object) -> str:
    if value is None or value == "":
        return str(default)
    return str(value)[:2048]
