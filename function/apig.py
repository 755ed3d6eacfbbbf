"""The API Gateway (APIG) envelope: decode the trigger event once, shape the response.

The request's body is kept as the exact bytes that were sent (base64-decoded when the gateway
says so), because signatures are computed over those bytes before anything parses them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass

from function.errors import InvalidInput, PayloadTooLarge

MAX_BODY_BYTES = 256 * 1024
BODY_TOO_LARGE = "PayloadTooLarge"  # the code of PayloadTooLarge (API Gateway: 413)
# Base64 text longer than this decodes to more than MAX_BODY_BYTES: refuse it before decoding.
_MAX_BASE64_CHARS = 4 * ((MAX_BODY_BYTES + 2) // 3)


@dataclass(frozen=True)
class ApigRequest:
    """One HTTP request as APIG delivered it: header names lower-case, body as raw bytes."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    raw_body: bytes
    request_id: str | None = None
    source_ip: str | None = None

    def header(self, name: str) -> str | None:
        """The value of a header, by any spelling of its name."""
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-case (``""`` when absent)."""
        value = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()


def is_apig(event: object) -> bool:
    """True for an APIG trigger event (PLATFORM §2.4: ``httpMethod`` and ``requestContext``)."""
    return isinstance(event, Mapping) and "httpMethod" in event and "requestContext" in event


def decode_apig(event: Mapping[str, object]) -> ApigRequest:
    """Decode an APIG event; raise InvalidInput naming the field that is malformed.

    An oversized body raises PayloadTooLarge (an InvalidInput; code ``BODY_TOO_LARGE``).
    """
    if not isinstance(event, Mapping):
        raise InvalidInput("event", "the API Gateway event must be a JSON object")
    method = event.get("httpMethod")
    if not isinstance(method, str) or not method.strip():
        raise InvalidInput("httpMethod", "httpMethod must be a non-empty string such as POST")
    path = event.get("path", "/")
    if path is None:
        path = "/"
    if not isinstance(path, str):
        raise InvalidInput("path", "path must be a string")
    context = event.get("requestContext")
    if context is None:
        context = {}
    if not isinstance(context, Mapping):
        raise InvalidInput("requestContext", "requestContext must be a JSON object")

    headers = _string_map(event.get("headers"), "headers", lower=True)
    query = _string_map(event.get("queryStringParameters"), "queryStringParameters", lower=False)
    raw_body = _body(event.get("body"), event.get("isBase64Encoded", False))

    request_id = headers.get("x-request-id") or _opt_str(context.get("requestId"))
    forwarded = headers.get("x-forwarded-for", "").split(",", 1)[0].strip()
    source_ip = headers.get("x-real-ip") or forwarded or _opt_str(context.get("sourceIp"))
    return ApigRequest(
        method=method.strip().upper(),
        path=path or "/",
        headers=headers,
        query=query,
        raw_body=raw_body,
        request_id=request_id,
        source_ip=source_ip,
    )


def apig_response(
    status: int, body: object | str, headers: Mapping[str, str] | None = None
) -> dict[str, object]:
    """An APIG response. A ``str`` body is sent as is; any other body is serialised as JSON.

    ``Content-Type: application/json`` is set unless ``headers`` names a Content-Type.
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status code, got {status!r}")
    out_headers: dict[str, str] = {}
    if not any(name.lower() == "content-type" for name in headers or {}):
        out_headers["Content-Type"] = "application/json"
    for name, value in (headers or {}).items():
        out_headers[str(name)] = str(value)
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return {
        "statusCode": status,
        "headers": out_headers,
        "body": text,
        "isBase64Encoded": False,
    }


def _string_map(raw: object, field: str, *, lower: bool) -> dict[str, str]:
    """A name -> value map of strings. A list value (multi-value) keeps its last entry for the
    query string and is joined with ", " for headers, as HTTP combines repeated headers."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput(field, f"{field} must be a JSON object of strings")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str):
            raise InvalidInput(field, f"{field} must have string names")
        if isinstance(value, str):
            text = value
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            text = ", ".join(value) if lower else value[-1]
        else:
            raise InvalidInput(f"{field}.{name}", f"{field}.{name} must be a string")
        key = name.lower() if lower else name
        if lower and key in out:
            text = f"{out[key]}, {text}"
        out[key] = text
    return out


def _body(raw: object, encoded: object) -> bytes:
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise InvalidInput("body", "body must be a string")
    if encoded is None:
        encoded = False
    if not isinstance(encoded, bool):
        raise InvalidInput("isBase64Encoded", "isBase64Encoded must be true or false")
    too_large = PayloadTooLarge("body", f"body is larger than {MAX_BODY_BYTES} bytes")
    if encoded:
        if len(raw) > _MAX_BASE64_CHARS:
            raise too_large
        try:
            data = base64.b64decode(raw, validate=True)
        except ValueError:  # binascii.Error, or non-ASCII text
            raise InvalidInput(
                "body", "body is not valid base64, but isBase64Encoded is true"
            ) from None
    else:
        if len(raw) > MAX_BODY_BYTES:  # each character is at least one byte
            raise too_large
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("body", "body is not valid UTF-8 text") from None
    if len(data) > MAX_BODY_BYTES:
        raise too_large
    return data


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
