"""SDK-HMAC-SHA256 verification, written from PLATFORM.md section 3.1 (not from the SDK).

The fake must never share code with the function's signer: a bug there has to fail here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_SKEW = timedelta(minutes=15)

_AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=(?P<ak>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)"
    r"\s*,\s*Signature=(?P<sig>[0-9A-Fa-f]+)\s*$"
)


class AuthError(Exception):
    """The request fails the gateway's IAM check; the message is the reason."""


def canonical_uri(raw_path: str) -> str:
    """Each segment of the unquoted path quoted with safe='~'; always ends with '/'."""
    uri = "/".join(quote(seg, safe="~") for seg in unquote(raw_path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded query pairs sorted, each side quoted with safe='~', joined by '&'."""
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(pairs))


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    """sha256 of the body; X-Sdk-Content-Sha256 is taken literally for non-empty bodies."""
    if not body:
        return EMPTY_SHA256
    literal = headers.get("x-sdk-content-sha256")
    if literal:
        return literal
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    raw_path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    """The canonical request; `headers` must have lower-case names and hold every signed one."""
    lines = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(query_pairs),
            lines,
            ";".join(signed_headers),
            payload_hash(body, headers),
        ]
    )


def string_to_sign(sdk_date: str, canonical: str) -> str:
    """Algorithm, date and the hex sha256 of the canonical request, one per line."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(sk: str, to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign with the secret key."""
    return hmac.new(sk.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _wire_value(value: str) -> str:
    """Header values arrive latin-1 decoded; the signer saw their UTF-8 text."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def verify(
    method: str,
    raw_path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: Mapping[str, str],
    now: datetime,
    security_token: str | None = None,
) -> str:
    """Check a request the way the API gateway does; return the access key or raise AuthError.

    `headers` must have lower-case names. `credentials` maps access key to secret key.
    """
    auth = headers.get("authorization")
    if not auth:
        raise AuthError("the Authorization header is missing")
    match = _AUTH_RE.match(auth.strip())
    if match is None:
        raise AuthError("the Authorization header is not SDK-HMAC-SHA256")
    ak, signed_raw, sig = match.group("ak"), match.group("signed"), match.group("sig")
    sk = credentials.get(ak)
    if sk is None:
        raise AuthError(f"unknown access key {ak!r}")
    signed = signed_raw.split(";")
    if any(name != name.lower() or not name for name in signed):
        raise AuthError("SignedHeaders must be lower-case header names")
    sdk_date = headers.get("x-sdk-date")
    if sdk_date is None:
        raise AuthError("the X-Sdk-Date header is missing")
    try:
        when = datetime.strptime(sdk_date.strip(), DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise AuthError(f"X-Sdk-Date {sdk_date!r} is not {DATE_FORMAT}") from exc
    if abs(now - when) > MAX_SKEW:
        raise AuthError(f"X-Sdk-Date {sdk_date} is more than 15 minutes from the server time")
    for required in ("host", "x-sdk-date"):
        if required not in signed:
            raise AuthError(f"the {required} header is not signed")
    token = headers.get("x-security-token")
    if token is not None and "x-security-token" not in signed:
        raise AuthError("the X-Security-Token header is not signed")
    if security_token is not None:
        if token is None:
            raise AuthError("the X-Security-Token header is missing")
        if not hmac.compare_digest(token.strip().encode(), security_token.encode()):
            raise AuthError("the security token is invalid")
    missing = [name for name in signed if name not in headers]
    if missing:
        raise AuthError(f"signed header {missing[0]!r} is absent from the request")
    values = {name: _wire_value(headers[name]) for name in signed}
    values.update({k: v for k, v in headers.items() if k not in values})
    canonical = canonical_request(method, raw_path, query_pairs, values, signed, body)
    expected = signature(sk, string_to_sign(sdk_date.strip(), canonical))
    if not hmac.compare_digest(expected, sig.lower()):
        raise AuthError("the signature does not match")
    return ak
