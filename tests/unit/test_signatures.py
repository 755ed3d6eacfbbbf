"""Standard Webhooks and Slack signatures: official vectors, every failure mode, properties."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from function.errors import ExportError
from function.signatures import (
    SignatureError,
    sign_slack,
    sign_standard_webhook,
    standard_webhook_headers,
    verify_slack,
    verify_standard_webhook,
    webhook_key,
)

# PLATFORM §5.1: the reference library's test_sign_function vector.
WH_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WH_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
WH_TS = 1614265330
WH_BODY = b'{"test": 2432232314}'
WH_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
WH_BAD_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode()

# PLATFORM §5.2: Slack's documented vector.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def wh_headers(
    signature: str = WH_SIG, msg_id: str = WH_ID, timestamp: str = str(WH_TS)
) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}


def slack_headers(signature: str = SLACK_SIG, timestamp: str = str(SLACK_TS)) -> dict[str, str]:
    return {"x-slack-signature": signature, "x-slack-request-timestamp": timestamp}


def reason_of(exc: pytest.ExceptionInfo[SignatureError]) -> str:
    return exc.value.reason


# --- Standard Webhooks ------------------------------------------------------------------------


def test_sign_standard_webhook_matches_official_vector() -> None:
    """Signing the reference vector gives the reference library's signature."""
    assert sign_standard_webhook(WH_SECRET, WH_ID, WH_TS, WH_BODY) == WH_SIG


def test_verify_standard_webhook_accepts_official_vector() -> None:
    """The reference vector verifies at its own time and returns the webhook-id."""
    assert verify_standard_webhook(WH_BODY, wh_headers(), [WH_SECRET], now=WH_TS) == WH_ID


def test_verify_standard_webhook_rejects_vector_with_last_char_changed() -> None:
    """The reference library's near-miss signature (…1OA=) is rejected."""
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard_webhook(WH_BODY, wh_headers(WH_BAD_SIG), [WH_SECRET], now=WH_TS)


def test_signature_error_is_a_rejected_export_error() -> None:
    """SignatureError is an ExportError with code InvalidSignature and outcome rejected."""
    err = SignatureError("missing webhook-id header")
    assert isinstance(err, ExportError)
    assert err.code == "InvalidSignature"
    assert err.outcome == "rejected"
    assert err.as_dict() == {"code": "InvalidSignature", "message": "missing webhook-id header"}


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_standard_webhook_rejects_missing_header(name: str) -> None:
    """Each of the three headers is required, and the reason names the missing one."""
    headers = wh_headers()
    del headers[name]
    with pytest.raises(SignatureError) as exc:
        verify_standard_webhook(WH_BODY, headers, [WH_SECRET], now=WH_TS)
    assert reason_of(exc) == f"missing {name} header"


def test_verify_standard_webhook_rejects_blank_header() -> None:
    """A header that is present but blank counts as missing."""
    with pytest.raises(SignatureError, match="missing webhook-signature"):
        verify_standard_webhook(WH_BODY, wh_headers(signature="  "), [WH_SECRET], now=WH_TS)


@pytest.mark.parametrize("timestamp", ["abc", "1614265330.5", "-1614265330", "+1614265330", "١"])
def test_verify_standard_webhook_rejects_non_integer_timestamp(timestamp: str) -> None:
    """A timestamp that is not plain ASCII digits is rejected before any HMAC."""
    with pytest.raises(SignatureError, match="not a whole number"):
        verify_standard_webhook(WH_BODY, wh_headers(timestamp=timestamp), [WH_SECRET], WH_TS)


def test_verify_standard_webhook_rejects_stale_timestamp() -> None:
    """A delivery signed more than five minutes ago is rejected as too old."""
    with pytest.raises(SignatureError, match="seconds old"):
        verify_standard_webhook(WH_BODY, wh_headers(), [WH_SECRET], now=WH_TS + 301)


def test_verify_standard_webhook_rejects_future_timestamp() -> None:
    """A delivery stamped more than five minutes ahead is rejected as from the future."""
    with pytest.raises(SignatureError, match="in the future"):
        verify_standard_webhook(WH_BODY, wh_headers(), [WH_SECRET], now=WH_TS - 301)


@pytest.mark.parametrize("now", [WH_TS - 300, WH_TS + 300])
def test_verify_standard_webhook_accepts_timestamp_at_the_window_edge(now: int) -> None:
    """Exactly the tolerance away, either side, is still inside the window."""
    assert verify_standard_webhook(WH_BODY, wh_headers(), [WH_SECRET], now=now) == WH_ID


def test_verify_standard_webhook_honours_custom_tolerance() -> None:
    """A smaller tolerance narrows the window."""
    with pytest.raises(SignatureError, match="more than 10 seconds old"):
        verify_standard_webhook(WH_BODY, wh_headers(), [WH_SECRET], now=WH_TS + 11, tolerance=10)


def test_verify_standard_webhook_rejects_tampered_body() -> None:
    """Changing one byte of the body breaks the signature."""
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard_webhook(b'{"test": 2432232315}', wh_headers(), [WH_SECRET], now=WH_TS)


def test_verify_standard_webhook_rejects_tampered_id() -> None:
    """The webhook-id is signed too, so a replay under another id fails."""
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard_webhook(WH_BODY, wh_headers(msg_id="msg_other"), [WH_SECRET], WH_TS)


def test_verify_standard_webhook_rejects_wrong_secret() -> None:
    """A signature made with a different secret does not verify."""
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard_webhook(WH_BODY, wh_headers(), [OTHER_SECRET], now=WH_TS)


@pytest.mark.parametrize(
    "secrets", [[OTHER_SECRET, WH_SECRET], [WH_SECRET, OTHER_SECRET]], ids=["new-old", "old-new"]
)
def test_verify_standard_webhook_accepts_any_secret_during_rotation(secrets: list[str]) -> None:
    """With old and new secrets configured, a delivery signed with either one verifies."""
    assert verify_standard_webhook(WH_BODY, wh_headers(), secrets, now=WH_TS) == WH_ID
    other = sign_standard_webhook(OTHER_SECRET, WH_ID, WH_TS, WH_BODY)
    assert verify_standard_webhook(WH_BODY, wh_headers(other), secrets, now=WH_TS) == WH_ID


def test_verify_standard_webhook_accepts_valid_v1_among_unknown_versions() -> None:
    """Unknown versions (v1a, v2) in the list are ignored and a valid v1 still verifies."""
    listed = f"v1a,c29tZXRoaW5nZWxzZQ== v2,xyz {WH_SIG}"
    assert verify_standard_webhook(WH_BODY, wh_headers(listed), [WH_SECRET], now=WH_TS) == WH_ID


def test_verify_standard_webhook_accepts_valid_v1_after_invalid_v1() -> None:
    """Every v1 entry is tried, so a stale one before the valid one does no harm."""
    listed = f"{WH_BAD_SIG} {WH_SIG}"
    assert verify_standard_webhook(WH_BODY, wh_headers(listed), [WH_SECRET], now=WH_TS) == WH_ID


def test_verify_standard_webhook_rejects_list_without_v1() -> None:
    """A list holding only other versions has nothing to check and is rejected."""
    listed = "v1a,c29tZXRoaW5nZWxzZQ== " + WH_SIG.replace("v1,", "v2,")
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify_standard_webhook(WH_BODY, wh_headers(listed), [WH_SECRET], now=WH_TS)


def test_verify_standard_webhook_rejects_when_no_secret_configured() -> None:
    """With no secret there is nothing to verify against; the reason names WEBHOOK_SECRETS."""
    with pytest.raises(SignatureError, match="WEBHOOK_SECRETS"):
        verify_standard_webhook(WH_BODY, wh_headers(), [], now=WH_TS)


@pytest.mark.parametrize(
    "secret",
    ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_", "whsec_abc"],
    ids=["no-prefix", "not-base64", "empty", "bad-padding"],
)
def test_verify_standard_webhook_rejects_malformed_secret_without_revealing_it(
    secret: str,
) -> None:
    """A malformed configured secret is reported by position, never by value."""
    with pytest.raises(SignatureError) as exc:
        verify_standard_webhook(WH_BODY, wh_headers(), [WH_SECRET, secret], now=WH_TS)
    assert "WEBHOOK_SECRETS entry 2" in reason_of(exc)
    assert "malformed" in reason_of(exc)
    if secret.removeprefix("whsec_"):
        assert secret.removeprefix("whsec_") not in reason_of(exc)


def test_verify_standard_webhook_reasons_never_hold_secret_or_expected_signature() -> None:
    """No failure reason repeats the secret, its key or the expected signature."""
    attempts = [
        wh_headers(WH_BAD_SIG),
        wh_headers(timestamp=str(WH_TS + 1000)),
        wh_headers(signature="v2,abc"),
    ]
    for headers in attempts:
        with pytest.raises(SignatureError) as exc:
            verify_standard_webhook(WH_BODY, headers, [WH_SECRET], now=WH_TS)
        text = str(exc.value)
        assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in text
        assert WH_SIG.removeprefix("v1,") not in text


def test_webhook_key_decodes_after_prefix() -> None:
    """The HMAC key is the base64 decoding of what follows whsec_."""
    assert webhook_key(WH_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def test_standard_webhook_headers_are_verifiable() -> None:
    """The outbound headers carry id, timestamp and a signature that verifies."""
    headers = standard_webhook_headers(WH_SECRET, WH_ID, WH_TS, WH_BODY)
    assert headers == wh_headers()
    assert verify_standard_webhook(WH_BODY, headers, [WH_SECRET], now=WH_TS) == WH_ID


def test_sign_standard_webhook_rejects_malformed_secret() -> None:
    """Signing with a secret that is not whsec_ + base64 raises SignatureError."""
    with pytest.raises(SignatureError, match="must start with whsec_"):
        sign_standard_webhook("secret", WH_ID, WH_TS, WH_BODY)


# --- Slack ------------------------------------------------------------------------------------


def test_sign_slack_matches_official_vector() -> None:
    """Signing Slack's documented request gives Slack's documented signature."""
    assert sign_slack(SLACK_SECRET, SLACK_TS, SLACK_BODY) == SLACK_SIG


def test_verify_slack_accepts_official_vector() -> None:
    """Slack's documented request verifies with the clock frozen at its timestamp."""
    verify_slack(SLACK_BODY, slack_headers(), SLACK_SECRET, now=SLACK_TS)


@pytest.mark.parametrize("name", ["x-slack-signature", "x-slack-request-timestamp"])
def test_verify_slack_rejects_missing_header(name: str) -> None:
    """Both Slack headers are required, and the reason names the missing one."""
    headers = slack_headers()
    del headers[name]
    with pytest.raises(SignatureError, match=f"missing {name} header"):
        verify_slack(SLACK_BODY, headers, SLACK_SECRET, now=SLACK_TS)


def test_verify_slack_rejects_wrong_signature() -> None:
    """A signature differing in its last hex digit is rejected."""
    with pytest.raises(SignatureError, match="does not match"):
        verify_slack(SLACK_BODY, slack_headers(SLACK_SIG[:-1] + "4"), SLACK_SECRET, SLACK_TS)


def test_verify_slack_rejects_wrong_secret() -> None:
    """The right signature checked against another signing secret is rejected."""
    with pytest.raises(SignatureError, match="does not match"):
        verify_slack(SLACK_BODY, slack_headers(), "another-secret", now=SLACK_TS)


def test_verify_slack_rejects_tampered_body() -> None:
    """Changing the body (another user) breaks the signature."""
    body = SLACK_BODY.replace(b"U2CERLKJA", b"U2CERLKJB")
    with pytest.raises(SignatureError, match="does not match"):
        verify_slack(body, slack_headers(), SLACK_SECRET, now=SLACK_TS)


def test_verify_slack_rejects_stale_timestamp() -> None:
    """A request older than five minutes is rejected (replay protection)."""
    with pytest.raises(SignatureError, match="seconds old"):
        verify_slack(SLACK_BODY, slack_headers(), SLACK_SECRET, now=SLACK_TS + 301)


def test_verify_slack_rejects_future_timestamp() -> None:
    """A request stamped more than five minutes ahead is rejected."""
    with pytest.raises(SignatureError, match="in the future"):
        verify_slack(SLACK_BODY, slack_headers(), SLACK_SECRET, now=SLACK_TS - 301)


def test_verify_slack_rejects_non_integer_timestamp() -> None:
    """A timestamp that is not a whole number of seconds is rejected."""
    with pytest.raises(SignatureError, match="not a whole number"):
        verify_slack(SLACK_BODY, slack_headers(timestamp="soon"), SLACK_SECRET, SLACK_TS)


@pytest.mark.parametrize("secret", [None, ""])
def test_verify_slack_rejects_when_no_secret_configured(secret: str | None) -> None:
    """Without a signing secret nothing verifies; the reason names SLACK_SIGNING_SECRET."""
    with pytest.raises(SignatureError, match="SLACK_SIGNING_SECRET"):
        verify_slack(SLACK_BODY, slack_headers(), secret, now=SLACK_TS)


def test_verify_slack_reasons_never_hold_secret_or_expected_signature() -> None:
    """A mismatch reason repeats neither the signing secret nor the expected signature."""
    with pytest.raises(SignatureError) as exc:
        verify_slack(SLACK_BODY, slack_headers("v0=00"), SLACK_SECRET, now=SLACK_TS)
    assert SLACK_SECRET not in str(exc.value)
    assert SLACK_SIG[3:] not in str(exc.value)


def test_verify_slack_rejects_non_ascii_signature() -> None:
    """A signature header with non-ASCII text is a plain mismatch, not a crash."""
    with pytest.raises(SignatureError, match="does not match"):
        verify_slack(SLACK_BODY, slack_headers("v0=é"), SLACK_SECRET, now=SLACK_TS)


# --- Properties -------------------------------------------------------------------------------

_SECRETS = st.one_of(
    st.just(WH_SECRET),
    st.binary(min_size=1, max_size=64).map(lambda k: "whsec_" + base64.b64encode(k).decode()),
    st.text(max_size=40),
)
_HEADER_NAMES = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-slack-signature",
        "x-slack-request-timestamp",
    ]
)
_HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.just(str(WH_TS)),
    st.just(WH_SIG),
    st.lists(st.sampled_from(["v1,", "v1a,", "v2,", WH_SIG, "v0=", " "]), max_size=5).map("".join),
)


@settings(deadline=None)
@given(
    body=st.binary(max_size=200),
    headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=5),
    secrets=st.lists(_SECRETS, max_size=3),
    now=st.integers(min_value=0, max_value=2**40),
)
def test_verify_standard_webhook_raises_only_signature_error(
    body: bytes, headers: dict[str, str], secrets: list[str], now: int
) -> None:
    """On arbitrary input the verifier either returns the id or raises SignatureError."""
    try:
        msg_id = verify_standard_webhook(body, headers, secrets, now)
    except SignatureError as exc:
        assert exc.reason
    else:
        assert msg_id == headers["webhook-id"]


@settings(deadline=None)
@given(
    body=st.binary(max_size=200),
    headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=5),
    secret=st.one_of(st.none(), st.text(max_size=40)),
    now=st.integers(min_value=0, max_value=2**40),
)
def test_verify_slack_raises_only_signature_error(
    body: bytes, headers: dict[str, str], secret: str | None, now: int
) -> None:
    """On arbitrary input the Slack verifier either returns or raises SignatureError."""
    try:
        verify_slack(body, headers, secret, now)
    except SignatureError as exc:
        assert exc.reason


@settings(deadline=None)
@given(
    key=st.binary(min_size=1, max_size=64),
    msg_id=st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
    .map(str.strip)
    .filter(bool),
    timestamp=st.integers(min_value=0, max_value=10**11),
    skew=st.integers(min_value=-300, max_value=300),
    body=st.binary(max_size=300),
)
def test_standard_webhook_round_trip(
    key: bytes, msg_id: str, timestamp: int, skew: int, body: bytes
) -> None:
    """What sign_standard_webhook signs verifies within the window, and fails once tampered."""
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = standard_webhook_headers(secret, msg_id, timestamp, body)
    assert verify_standard_webhook(body, headers, [secret], now=timestamp + skew) == msg_id
    with pytest.raises(SignatureError):
        verify_standard_webhook(body + b"x", headers, [secret], now=timestamp + skew)


@settings(deadline=None)
@given(
    secret=st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    timestamp=st.integers(min_value=0, max_value=10**11),
    body=st.binary(max_size=300),
)
def test_slack_round_trip(secret: str, timestamp: int, body: bytes) -> None:
    """What sign_slack signs verifies at its time, and fails once the body is tampered."""
    headers = slack_headers(sign_slack(secret, timestamp, body), str(timestamp))
    verify_slack(body, headers, secret, now=timestamp)
    with pytest.raises(SignatureError):
        verify_slack(body + b"x", headers, secret, now=timestamp)
