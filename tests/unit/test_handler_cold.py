"""The cold path of ``handler.handler``: the first import runs without the cyclic collector."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import handler


@pytest.fixture
def restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled", [True, False], ids=["gc-on", "gc-off"])
def test_import_app_restores_the_collector(
    restore_gc: None, enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the cold import the collector is as it was, and the imported objects are frozen."""
    monkeypatch.delitem(sys.modules, "function.app", raising=False)  # as in a fresh process
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()
    handler._import_app()
    assert gc.isenabled() is enabled
    assert gc.get_freeze_count() > 0
    assert "function.app" in sys.modules


def test_import_app_does_nothing_once_imported(restore_gc: None) -> None:
    """With the function imported already, nothing is paused or frozen."""
    import function.app  # noqa: F401

    gc.unfreeze()
    gc.enable()
    handler._import_app()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_cold_call_returns_a_result_and_leaves_gc_on(
    restore_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold call still answers (here: an unknown event, rejected) and re-enables the collector."""
    gc.enable()
    monkeypatch.setattr(handler, "_COLD", [True])
    result = handler.handler(None, None)
    assert result["summary"]["rejected"] == 1
    assert gc.isenabled()
    assert handler._COLD == [False]


_SLACK_PROBE = r"""
import base64, hashlib, hmac, json, os, sys, time
os.environ.update(SLACK_SIGNING_SECRET="s3cr3t", CHAT_ALLOWED_USERS="U1")
body = sys.argv[1].encode()
ts = str(int(time.time()))
sig = "v0=" + hmac.new(b"s3cr3t", f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
headers = {"content-type": "application/x-www-form-urlencoded"}
if b"ssl_check" not in body:
    headers.update({"x-slack-request-timestamp": ts, "x-slack-signature": sig})
event = {"body": base64.b64encode(body).decode(), "isBase64Encoded": True, "httpMethod": "POST",
         "requestContext": {"requestId": "r"}, "headers": headers, "path": "/"}
import handler
out = handler.handler(event, None)
heavy = sorted(m for m in ("requests", "urllib3", "huaweicloudsdkcore") if m in sys.modules)
print(json.dumps({"status": out["statusCode"], "body": out["body"], "heavy": heavy}))
"""


@pytest.mark.parametrize(
    "body",
    [
        "ssl_check=1&token=x",
        "user_id=U1&channel_id=C1&command=%2Fevs-export&text=help",
    ],
    ids=["ssl_check", "help"],
)
def test_slack_answers_without_the_http_stack(body: str) -> None:
    """A cold ssl_check or help is answered without importing requests or the SDK signer."""
    root = Path(__file__).parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHAT_"))}
    run = subprocess.run(
        [sys.executable, "-c", _SLACK_PROBE, body],
        cwd=root,
        env={**env, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["status"] == 200
    assert ("Export EVS volumes" in found["body"]) is (body.endswith("help"))
    assert found["heavy"] == []
