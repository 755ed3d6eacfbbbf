"""Inbound and outbound HMAC signatures: Standard Webhooks v1 and Slack v0.

Pure functions over the exact raw body bytes, with the clock passed in as Unix seconds.
Failure reasons are plain words fit for a log line: they never hold a secret or an expected
signature, and the edge answers 401 without them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from function.errors import SignatureError as SignatureError

WEBHOOK_SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_MAX_ID_CHARS = 256
_MAX_SIGNATURE_HEADER_CHARS = 4096


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after ``whsec_``.

    Raises SignatureError (without the secret) when it is malformed.
    """
    if not isinstance(secret, str) or not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise SignatureError("webhook secret is malformed: it must start with whsec_")
    try:
        key = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise SignatureError(
            "webhook secret is malformed: the part after whsec_ must be base64"
        ) from None
    if not key:
        raise SignatureError("webhook secret is malformed: the key after whsec_ is empty")
    return key


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` entry ``v1,<base64>`` for one message (inbound or outbound)."""
    return "v1," + _webhook_digest(webhook_key(secret), msg_id, str(timestamp), body)


def standard_webhook_headers(
    secret: str, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of an outbound Standard Webhooks delivery (same id on every retry)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(secret, msg_id, timestamp, body),
    }


def verify_standard_webhook(
    raw_body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> str:
    """Check a Standard Webhooks v1 signature against every secret; return the webhook-id.

    ``headers`` has lower-case names. Every ``v1`` entry of the space-separated signature
    list is tried against every secret (rotation); other versions are ignored.
    """
    if isinstance(secrets, str):
        secrets = [secrets]
    if not secrets:
        raise SignatureError("no webhook secret is configured; set WEBHOOK_SECRETS")
    keys: list[bytes] = []
    for index, secret in enumerate(secrets, start=1):
        try:
            keys.append(webhook_key(secret))
        except SignatureError as exc:
            raise SignatureError(f"WEBHOOK_SECRETS entry {index}: {exc.reason}") from None

    msg_id = _header(headers, "webhook-id")
    if len(msg_id) > _MAX_ID_CHARS:
        raise SignatureError(f"webhook-id header is longer than {_MAX_ID_CHARS} characters")
    timestamp = _header(headers, "webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    _check_time(timestamp, "webhook-timestamp", now, tolerance)
    if len(signature) > _MAX_SIGNATURE_HEADER_CHARS:
        raise SignatureError("webhook-signature header is too long")

    offered: list[bytes] = []
    for entry in signature.split():
        version, sep, value = entry.partition(",")
        if sep and version == "v1" and value:
            offered.append(_ascii(value))
    if not offered:
        raise SignatureError("webhook-signature header has no v1 signature")
    matched = False
    for key in keys:
        expected = _webhook_digest(key, msg_id, timestamp, raw_body).encode("ascii")
        for candidate in offered:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("webhook-signature does not match the body and secrets")
    return msg_id


def sign_slack(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Slack-Signature`` value: ``v0=`` + hex HMAC-SHA256 of ``v0:{ts}:{body}``."""
    key = _utf8(secret, "SLACK_SIGNING_SECRET")
    base = b"v0:" + _utf8(str(timestamp), "x-slack-request-timestamp") + b":" + body
    return "v0=" + hmac.new(key, base, hashlib.sha256).hexdigest()


def verify_slack(
    raw_body: bytes,
    headers: Mapping[str, str],
    signing_secret: str | None,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> None:
    """Check a Slack request signature (``headers`` with lower-case names); raise on failure."""
    if not signing_secret:
        raise SignatureError("no Slack signing secret is configured; set SLACK_SIGNING_SECRET")
    timestamp = _header(headers, "x-slack-request-timestamp")
    signature = _header(headers, "x-slack-signature")
    _check_time(timestamp, "x-slack-request-timestamp", now, tolerance)
    expected = sign_slack(signing_secret, timestamp, raw_body).encode("ascii")
    if not hmac.compare_digest(expected, _ascii(signature)):
        raise SignatureError("x-slack-signature does not match the body and signing secret")


def _webhook_digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    content = _utf8(msg_id, "webhook-id") + b"." + _utf8(timestamp, "webhook-timestamp")
    digest = hmac.new(key, content + b"." + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SignatureError(f"missing {name} header")
    return value


def _check_time(timestamp: str, name: str, now: int, tolerance: int) -> None:
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError(f"{name} header is not a whole number of seconds")
    age = now - int(timestamp)
    if age > tolerance:
        raise SignatureError(f"{name} is more than {tolerance} seconds old")
    if -age > tolerance:
        raise SignatureError(f"{name} is more than {tolerance} seconds in the future")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise SignatureError(f"{what} is not valid text") from None


def _ascii(text: str) -> bytes:
    """Offered signatures as bytes for compare_digest; non-ASCII ones can never match."""
    return text.encode("ascii", errors="replace")
