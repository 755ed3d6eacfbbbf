"""``function.testing``: the transports and ``capture_logs`` shipped for tests, and
``function.log.reset`` under them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import structlog

from function import log
from function.errors import TransportError
from function.testing import MockTransport, ScriptedTransport, Sent, capture_logs, response

TIMEOUT = (1.0, 2.0)


def test_mock_transport_answers_with_handler_and_records() -> None:
    """MockTransport returns the handler's answer and keeps every request it got."""
    transport = MockTransport(lambda req: response(200, {"path": req.url}))
    answer = transport.send("GET", "https://evs/v2/x", {"A": "1"}, b"", TIMEOUT)
    assert answer.status == 200
    assert answer.json() == {"path": "https://evs/v2/x"}
    assert transport.sent == [Sent("GET", "https://evs/v2/x", {"A": "1"}, b"", TIMEOUT)]


def test_mock_transport_raises_transport_error_from_handler() -> None:
    """A TransportError returned by the handler is raised, as a dropped connection would be."""
    error = TransportError("ReadTimeout", "no answer in time", maybe_sent=True)
    transport = MockTransport(lambda _req: error)
    with pytest.raises(TransportError) as caught:
        transport.send("POST", "https://evs/", {}, b"{}", TIMEOUT)
    assert caught.value is error
    assert len(transport.sent) == 1


def test_scripted_transport_answers_in_order_then_fails() -> None:
    """ScriptedTransport answers from its script in order; one request too many fails the test."""
    transport = ScriptedTransport(response(202), response(404, b"raw"))
    assert transport.send("POST", "u1", {}, b"", TIMEOUT).status == 202
    second = transport.send("GET", "u2", {}, b"", TIMEOUT)
    assert (second.status, second.body) == (404, b"raw")
    with pytest.raises(AssertionError, match="unexpected request GET u3"):
        transport.send("GET", "u3", {}, b"", TIMEOUT)
    assert [s.url for s in transport.sent] == ["u1", "u2", "u3"]


@pytest.mark.parametrize(
    ("body", "raw"),
    [(None, b""), ({"a": 1}, b'{"a": 1}'), (b"as-is", b"as-is"), ([1], b"[1]")],
)
def test_response_body_vectors(body: object, raw: bytes) -> None:
    """response() encodes a body as JSON, keeps bytes as they are and None as empty."""
    assert response(200, body).body == raw


def test_capture_logs_sees_redacted_events_with_context() -> None:
    """capture_logs yields each log line as a dict, context keys bound and secrets masked."""
    with capture_logs() as events:
        log.REDACTOR.register(["s3cret-value"])
        log.start_invocation(request_id="req-9")
        structlog.get_logger().info("hello", token="abc", note="has s3cret-value inside")
    assert events == [
        {
            "level": "INFO",
            "timestamp": events[0]["timestamp"],
            "service": "evs-export",
            "message": "hello",
            "request_id": "req-9",
            "token": "***",
            "note": "has *** inside",
        }
    ]


def test_capture_logs_follows_configure_without_stream() -> None:
    """A configure() inside the block (as app.handle does) still logs into the capture."""
    with capture_logs() as events:
        log.configure("WARNING")
        structlog.get_logger().info("dropped")
        structlog.get_logger().warning("kept")
    assert [e["message"] for e in events] == ["kept"]


def test_reset_clears_what_an_invocation_leaves(capsys: pytest.CaptureFixture[str]) -> None:
    """log.reset() forgets the config, the context keys, the stream and the secrets: the
    next configure() logs to stdout again, without the old keys or masks."""
    with capture_logs():
        log.REDACTOR.register(["another-secret"])
        log.start_invocation(request_id="req-1")
    assert structlog.contextvars.get_contextvars() == {}
    assert log.REDACTOR.mask("another-secret") == "another-secret"
    assert not structlog.is_configured()
    log.configure("INFO")
    structlog.get_logger().info("after", note="another-secret")
    line = json.loads(capsys.readouterr().out)
    assert (line["message"], line["note"]) == ("after", "another-secret")
    assert "request_id" not in line


def test_testing_module_is_not_imported_by_the_function() -> None:
    """Importing the handler loads neither function.testing nor anything only tests need."""
    code = (
        "import sys, handler\n"
        "bad = [m for m in ('function.testing', 'pytest', 'responses') if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
