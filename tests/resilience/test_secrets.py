"""Secrets never leave: across successes, signature failures, API and configuration errors
and hostile input, no secret (nor a request signature) reaches a log line, a return value,
a result delivery or a request body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from fakecloud import FakeCloud, Fault, mock_cloud
from function import log
from function.app import invoke
from function.runtime import Runtime
from tests.resilience import PROJECT, REGION, reset_logging, timer_event, volume_id

ENV_AK, ENV_SK = "ENVAKRESILIENCE", "envSK-0123456789abcdef-SECRET"
CTX_AK, CTX_SK = "CTXAKRESILIENCE", "ctxSK-fedcba9876543210-SECRET"
TOKEN = "ctxTOKEN-" + "Tk9" * 30
WEBHOOK_KEYS = (b"first-webhook-key-bytes-0000001", b"second-webhook-key-bytes-000002")
WEBHOOK_SECRETS = tuple("whsec_" + base64.b64encode(k).decode() for k in WEBHOOK_KEYS)
SLACK_SECRET = "slack-signing-secret-0123456789ab"
RESULT_KEY = b"result-webhook-key-bytes-000003"
RESULT_SECRET = "whsec_" + base64.b64encode(RESULT_KEY).decode()
RESULT_URL = "https://results.example.com/evs-hook"
TOPIC = f"urn:smn:{REGION}:{PROJECT}:evs-results"
SLACK_USER, SLACK_CHANNEL = "U0SECRETS", "C0SECRETS"
RESPONSE_URL = "https://hooks.slack.com/commands/T1/2/secrets"
VOLUME = volume_id(0)
SERVER = volume_id(0, "server")
ACTION = "os-volume_upload_image"

SECRETS = [
    ENV_SK,
    CTX_SK,
    TOKEN,
    *WEBHOOK_SECRETS,
    *(s.removeprefix("whsec_") for s in WEBHOOK_SECRETS),
    *(k.decode() for k in WEBHOOK_KEYS),
    SLACK_SECRET,
    RESULT_SECRET,
    RESULT_SECRET.removeprefix("whsec_"),
    RESULT_KEY.decode(),
]
_SIGNATURE = re.compile(r"Signature=([0-9a-f]{64})")


class Context:
    """A FunctionGraph context with temporary credentials."""

    def getRequestID(self) -> str:
        return "ctx-request-1"

    def getRemainingTimeInMilliSeconds(self) -> int:
        return 300_000

    def getSecurityAccessKey(self) -> str:
        return CTX_AK

    def getSecuritySecretKey(self) -> str:
        return CTX_SK

    def getSecurityToken(self) -> str:
        return TOKEN

    def getFunctionName(self) -> str:
        return "evs-export"

    def getVersion(self) -> str:
        return "latest"

    def getProjectID(self) -> str:
        return PROJECT

    def getUserData(self, key: str) -> str:
        return ""


def base_env(**extra: str) -> dict[str, str]:
    """Every secret the function knows of is set."""
    values = {
        "REGION": REGION,
        "PROJECT_ID": PROJECT,
        "HUAWEICLOUD_SDK_AK": ENV_AK,
        "HUAWEICLOUD_SDK_SK": ENV_SK,
        "WEBHOOK_SECRETS": ",".join(WEBHOOK_SECRETS),
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "CHAT_ALLOWED_USERS": SLACK_USER,
        "RESULT_WEBHOOK_URL": RESULT_URL,
        "RESULT_WEBHOOK_SECRET": RESULT_SECRET,
        "RESULT_SMN_TOPIC_URN": TOPIC,
        "MAX_REQUESTS_PER_SECOND": "1000",
        "LOG_LEVEL": "DEBUG",
    }
    values.update(extra)
    return values


def apig(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "httpMethod": "POST",
        "path": "/evs-export",
        "headers": headers,
        "queryStringParameters": {},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
        "requestContext": {"requestId": "apig-1"},
    }


def webhook(payload: object, key: bytes = WEBHOOK_KEYS[1], age: int = 0) -> dict[str, Any]:
    raw = json.dumps(payload).encode()
    ts = int(time.time()) - age
    digest = hmac.new(key, f"msg_s1.{ts}.".encode() + raw, hashlib.sha256).digest()
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg_s1",
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    return apig(raw, headers)


def slack(text: str, secret: str = SLACK_SECRET) -> dict[str, Any]:
    raw = urlencode(
        {
            "team_id": "T1",
            "channel_id": SLACK_CHANNEL,
            "user_id": SLACK_USER,
            "command": "/evs-export",
            "text": text,
            "response_url": RESPONSE_URL,
        }
    ).encode()
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={digest}",
    }
    return apig(raw, headers)


@dataclass
class Scenario:
    events: list[object]
    env: dict[str, str] = field(default_factory=base_env)
    context: bool = True
    cloud_sk: str | None = None  # the SK the fake expects (default: the one in use)
    faults: list[Fault] = field(default_factory=list)
    expect: Callable[[list[dict[str, Any]]], bool] = lambda _results: True


def export(name: str = "secret-test") -> dict[str, Any]:
    return {"volume_id": VOLUME, ACTION: {"image_name": name, "force": True}}


def _status(code: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda results: all(r.get("statusCode") == code for r in results)


def _summary(kind: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda results: all(r["summary"][kind] >= 1 for r in results)


SCENARIOS: dict[str, Scenario] = {
    "export with context credentials, delivered": Scenario(
        [export(), {"action": "reconcile"}],
        expect=lambda results: results[0]["summary"]["accepted"] == 1,
    ),
    "timer with environment credentials": Scenario(
        [
            timer_event(
                {"policy": "nightly", "select": {"volume_ids": [VOLUME]}, "force": True, "keep": 1}
            )
        ],
        context=False,
        expect=_summary("accepted"),
    ),
    "webhook signed with the rotated secret": Scenario(
        [webhook(export("from-hook"))], expect=_status(202)
    ),
    "webhook decommission": Scenario(
        [webhook({"action": "decommission", "server_id": SERVER})], expect=_status(202)
    ),
    "webhook forged": Scenario([webhook(export(), key=b"not-the-key")], expect=_status(401)),
    "webhook stale": Scenario([webhook(export(), age=3600)], expect=_status(401)),
    "slack forged": Scenario([slack(f"{VOLUME} force", secret="wrong")], expect=_status(401)),
    "slack export and server job": Scenario(
        [slack(f'{VOLUME} name="from-slack" force'), slack(f"server {SERVER} force")],
        env=base_env(CHAT_ALLOWED_CHANNELS=SLACK_CHANNEL, FUNCTION_URN=""),
        expect=_status(200),
    ),
    "cloud refuses the signature": Scenario(
        [export()], cloud_sk="another-sk", expect=_summary("rejected")
    ),
    "cloud fails until retries run out": Scenario(
        [export()], faults=[Fault(path=r".*", status=500, times=-1)], expect=_summary("failed")
    ),
    "connections reset": Scenario(
        [export()],
        faults=[Fault(path=r"/action$", reset="after", times=3)],
        expect=_summary("accepted"),
    ),
    "malformed configuration": Scenario(
        [export(), webhook(export())],
        env=base_env(
            WEBHOOK_SECRETS=f"whsec_%%%,{WEBHOOK_SECRETS[0]}",
            RESULT_WEBHOOK_URL="ftp://results.example.com",
            RESULT_SMN_TOPIC_URN="not-a-urn",
            MAX_CONCURRENCY="many",
            REGION="Mars-1",
        ),
    ),
    "missing secret key": Scenario(
        [export()],
        env={k: v for k, v in base_env().items() if k != "HUAWEICLOUD_SDK_SK"},
        context=False,
        expect=_summary("rejected"),
    ),
    "result webhook without its secret": Scenario(
        [export()], env=base_env(RESULT_WEBHOOK_SECRET=""), expect=_summary("accepted")
    ),
    "hostile input": Scenario(
        [
            None,
            [SERVER],
            {"exports": [{"volume_id": "../../x", ACTION: {"image_name": "a/b"}}]},
            {"httpMethod": "POST", "requestContext": {}, "body": "%%%", "isBase64Encoded": True},
            {"cts": {"trace_name": "stopServer", "resource_id": "../x"}},
            {"evs_export_continuation": {"orders": [{"volume_id": 1}], "hop": 99}},
            {"evs_export_chat_job": {"server_id": SERVER, "response_url": "https://evil"}},
            {"trigger_type": "TIMER", "user_event": "{" * 5000},
        ]
    ),
}


@dataclass
class Capture:
    results: list[dict[str, Any]]
    logs: str
    deliveries: list[str]
    cloud: FakeCloud


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The runtime ``invoke`` builds from the context never really sleeps (seeded jitter)."""
    original = Runtime.from_context.__func__  # type: ignore[attr-defined]

    def from_context(cls: type[Runtime], context: Any, cold_start: bool) -> Runtime:
        runtime: Runtime = original(cls, context, cold_start)
        runtime.sleep = lambda _s: None
        runtime.rng = random.Random(3)
        return runtime

    monkeypatch.setattr(Runtime, "from_context", classmethod(from_context))
    yield
    reset_logging()


def play(scenario: Scenario) -> Capture:
    ak, sk = (CTX_AK, CTX_SK) if scenario.context else (ENV_AK, ENV_SK)
    cloud = FakeCloud(
        ak=ak,
        sk=scenario.cloud_sk or sk,
        project_id=PROJECT,
        region=REGION,
        security_token=TOKEN if scenario.context else None,
    )
    cloud.evs.add_volume(id=VOLUME, name="db", attachments=[{"server_id": SERVER}])
    cloud.ecs.add_server(id=SERVER, name="web-1")
    for fault in scenario.faults:
        cloud.faults.add(fault)
    deliveries: list[str] = []

    def receive(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = request.body or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        deliveries.append(json.dumps(dict(request.headers)) + "\n" + text)
        return 200, {}, "{}"

    stream = io.StringIO()
    log.use_stream(stream)
    results = []
    mock = mock_cloud(cloud)
    with mock:
        for host in (r"https://results\.example\.com/.*", r"https://hooks\.slack\.com/.*"):
            mock.responses.add_callback("POST", re.compile(host), callback=receive)
        for event in scenario.events:
            context = Context() if scenario.context else None
            results.append(invoke(event, context, env=scenario.env))
    return Capture(results, stream.getvalue(), deliveries, cloud)


@pytest.mark.usefixtures("no_sleep")
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_secret_leaks(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """One scenario with every secret set: none of them, nor any Authorization signature
    sent, appears in the log, the return values, stdout/stderr or the result deliveries;
    no request carries a secret (the token only in its own header)."""
    scenario = SCENARIOS[name]
    capture = play(scenario)
    out = capsys.readouterr()
    assert capture.logs, "the scenario logged nothing: the capture is broken"
    assert scenario.expect(capture.results), capture.results

    signatures = {
        m.group(1)
        for r in capture.cloud.requests
        for m in [_SIGNATURE.search(r.headers.get("authorization", ""))]
        if m is not None
    }
    haystacks = {
        "log": capture.logs,
        "stdout": out.out,
        "stderr": out.err,
        "return values": json.dumps(capture.results, ensure_ascii=False),
        "result deliveries": "\n".join(capture.deliveries),
    }
    for where, text in haystacks.items():
        for secret in [*SECRETS, *signatures]:
            assert secret not in text, f"{name}: {secret[:12]}... appears in the {where}"
    for request in capture.cloud.requests:
        headers = {k: v for k, v in request.headers.items() if k != "x-security-token"}
        sent = json.dumps(headers) + request.body.decode("utf-8", "replace")
        for secret in SECRETS:
            assert secret not in sent, f"{name}: a secret was sent in {request.path}"


@pytest.mark.usefixtures("no_sleep")
def test_secret_echoed_by_the_api_is_not_passed_on(capsys: pytest.CaptureFixture[str]) -> None:
    """An API error message that echoes the credentials (a misbehaving gateway) does not carry
    them into the log, the return value or the result deliveries."""
    echo = {"error_code": "APIGW.0301", "error_msg": f"bad token {TOKEN} for key {CTX_SK}"}
    scenario = Scenario(
        [export()], faults=[Fault(path=r"/action$", status=403, body=echo, times=-1)]
    )
    capture = play(scenario)
    out = capsys.readouterr()
    [result] = capture.results
    assert result["summary"]["rejected"] == 1
    haystacks = {
        "log": capture.logs + out.out + out.err,
        "return value": json.dumps(capture.results),
        "result deliveries": "\n".join(capture.deliveries),
        "SMN messages": json.dumps(capture.cloud.smn.messages),
    }
    leaks = [w for w, text in haystacks.items() for s in (TOKEN, CTX_SK) if s in text]
    assert not leaks, f"the echoed credentials reach: {sorted(set(leaks))}"
