"""JSON logs with a fixed key set, per-invocation context and redaction (function/log.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import structlog

from function import log

SECRET = "s3cr3t-Value-42"
AUTH = "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=abcdef0123"
FIRST_KEYS = [
    "level",
    "timestamp",
    "service",
    "message",
    "cold_start",
    "function_name",
    "function_version",
    "request_id",
    "correlation_id",
]


def start(stream: io.StringIO, request_id: str = "req-1", **extra: Any) -> None:
    log.configure("INFO", stream=stream)
    log.start_invocation(
        cold_start=True,
        function_name="evs-export",
        function_version="latest",
        request_id=request_id,
        **extra,
    )
    structlog.contextvars.bind_contextvars(correlation_id="corr-1")


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Each output line parsed as one JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def test_each_line_is_one_json_object_with_fixed_keys(stream: io.StringIO) -> None:
    """A log call writes one JSON line with the fixed keys first, in order."""
    start(stream)
    structlog.get_logger("t").info("hello", volume_id="v1")
    structlog.get_logger("t").warning("careful")
    out = lines(stream)
    assert len(out) == 2
    first = out[0]
    assert list(first)[: len(FIRST_KEYS)] == FIRST_KEYS
    assert first["level"] == "INFO"
    assert first["service"] == "evs-export"
    assert first["message"] == "hello"
    assert first["cold_start"] is True
    assert first["function_name"] == "evs-export"
    assert first["function_version"] == "latest"
    assert first["request_id"] == "req-1"
    assert first["correlation_id"] == "corr-1"
    assert first["volume_id"] == "v1"
    assert first["timestamp"].endswith("Z")
    assert out[1]["level"] == "WARNING"


def test_level_filters(stream: io.StringIO) -> None:
    """Below the configured level nothing is written."""
    start(stream)
    structlog.get_logger("t").debug("hidden")
    assert stream.getvalue() == ""


def test_registered_secret_masked_everywhere(stream: io.StringIO) -> None:
    """A registered secret is replaced by *** in the message, nested dicts, lists and errors."""
    start(stream)
    log.REDACTOR.register([SECRET])
    try:
        raise ValueError(f"bad key {SECRET}")
    except ValueError as exc:
        err = exc
    structlog.get_logger("t").info(
        f"message with {SECRET} inside",
        nested={"a": {"b": f"x{SECRET}y"}},
        items=["ok", SECRET, ("t", SECRET)],
        error=err,
    )
    text = stream.getvalue()
    assert SECRET not in text
    line = lines(stream)[0]
    assert line["message"] == "message with *** inside"
    assert line["nested"] == {"a": {"b": "x***y"}}
    assert line["items"] == ["ok", "***", ["t", "***"]]
    assert line["error"] == "ValueError('bad key ***')"


def test_registered_secret_masked_in_exception_traceback(stream: io.StringIO) -> None:
    """A secret inside a logged exception's traceback text is masked."""
    start(stream)
    log.REDACTOR.register([SECRET])
    try:
        raise RuntimeError(SECRET)
    except RuntimeError:
        structlog.get_logger("t").exception("crashed")
    assert SECRET not in stream.getvalue()
    assert "RuntimeError: ***" in lines(stream)[0]["exception"]


class Holder:
    """An object whose text shows a secret."""

    def __str__(self) -> str:
        return f"Holder({SECRET})"


@pytest.mark.parametrize(
    "value",
    [{SECRET}, frozenset({SECRET}), SECRET.encode(), Holder()],
    ids=["set", "frozenset", "bytes", "object-str"],
)
def test_registered_secret_masked_in_other_values(stream: io.StringIO, value: object) -> None:
    """A registered secret never reaches the line, whatever value holds it (sets, bytes, str())."""
    start(stream)
    log.REDACTOR.register([SECRET])
    structlog.get_logger("t").info("values", value=value)
    assert SECRET not in stream.getvalue()


@pytest.mark.parametrize(
    "key",
    [
        "sk",
        "secret",
        "token",
        "authorization",
        "Authorization",
        "signature",
        "security_token",
        "X-Security-Token",
        "webhook_secret",
        "password",
    ],
)
def test_secret_named_keys_masked(stream: io.StringIO, key: str) -> None:
    """Values under secret-sounding keys are masked, at top level and nested."""
    start(stream)
    structlog.get_logger("t").info("keys", **{key: "visible-value"}, headers={key: "nested"})
    line = lines(stream)[0]
    assert line[key] == "***"
    assert line["headers"][key] == "***"
    assert "visible-value" not in stream.getvalue()


@pytest.mark.parametrize("key", ["task", "disk_format", "skipped", "desk", "tokens_used_count"])
def test_ordinary_keys_not_masked(stream: io.StringIO, key: str) -> None:
    """Keys that merely contain the letters of a secret word are left alone."""
    start(stream)
    structlog.get_logger("t").info("keys", **{key: "value"})
    assert lines(stream)[0][key] == "value"


def test_authorization_header_value_signature_masked(stream: io.StringIO) -> None:
    """An SDK-HMAC-SHA256 Authorization value keeps Access and SignedHeaders, masks Signature."""
    start(stream)
    structlog.get_logger("t").info(f"sent {AUTH}", header_text=AUTH)
    line = lines(stream)[0]
    masked = "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=***"
    assert line["header_text"] == masked
    assert line["message"] == f"sent {masked}"
    assert "abcdef0123" not in stream.getvalue()


def test_short_values_not_registered(stream: io.StringIO) -> None:
    """Values shorter than four characters are not treated as secrets (no mass masking)."""
    start(stream)
    log.REDACTOR.register(["ab", ""])
    structlog.get_logger("t").info("about abba")
    assert lines(stream)[0]["message"] == "about abba"


def test_context_cleared_between_invocations(stream: io.StringIO) -> None:
    """A key bound during one invocation is absent from the next invocation's lines."""
    start(stream, request_id="req-1")
    structlog.contextvars.bind_contextvars(trigger="timer", volume_hint="v-old")
    structlog.get_logger("t").info("first")
    log.start_invocation(
        cold_start=False, function_name="evs-export", function_version="latest", request_id="req-2"
    )
    structlog.get_logger("t").info("second")
    first, second = lines(stream)
    assert first["volume_hint"] == "v-old"
    assert first["trigger"] == "timer"
    assert "volume_hint" not in second
    assert "trigger" not in second
    assert "correlation_id" not in second
    assert second["request_id"] == "req-2"
    assert second["cold_start"] is False


def test_redactor_scrub_is_pure() -> None:
    """Redactor.scrub returns masked copies and leaves its input untouched."""
    redactor = log.Redactor()
    redactor.register([SECRET])
    data = {"a": [SECRET], "token": "t0k3n"}
    assert redactor.scrub(data) == {"a": ["***"], "token": "***"}
    assert data == {"a": [SECRET], "token": "t0k3n"}


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        AUTH,
        f"header was {AUTH} then more",
        "sdk-hmac-sha256 Access=AK, SignedHeaders=a, Signature=abcdef",  # not the scheme
        "SDK-HMAC-SHA256 without the rest",
        "",
    ],
)
def test_scrub_string_matches_the_auth_pattern(text: str) -> None:
    """The scheme check before the regex changes nothing: scrub equals the pattern's result."""
    redactor = log.Redactor()
    expected = log._AUTH_VALUE.sub(rf"\g<1>{log.REDACTED}", text)
    assert redactor.scrub(text) == expected


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("sk", True),
        ("X-Security-Token", True),
        ("client_secret", True),
        ("Authorization", True),
        ("volume_id", False),
        ("tokens", False),
        ("desk", False),
    ],
)
def test_secret_keys_masked_on_every_call(key: str, secret: bool) -> None:
    """A secret-named key is masked the first time and every time after (remembered answer)."""
    redactor = log.Redactor()
    for _ in range(3):
        out = redactor.scrub({key: "value-1234"})
        assert (out[key] == log.REDACTED) is secret
