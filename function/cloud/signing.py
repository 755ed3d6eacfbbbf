"""SDK-HMAC-SHA256 signing with huaweicloudsdkcore's ``Signer``, used standalone.

The SDK's export method no longer exists, so the request is built here and only the signer
is borrowed. ``X-Sdk-Date`` is always set from the ``now`` passed in (deterministic, and it
avoids the signer's ``utcnow()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit

from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from function.config import Credentials

CONTENT_TYPE = "application/json;charset=UTF-8"
USER_AGENT = "evs-export/0.1"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


class SignedRequest(NamedTuple):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class _Keys:
    """The only two attributes the signer reads."""

    __slots__ = ("ak", "sk")

    def __init__(self, ak: str, sk: str) -> None:
        self.ak = ak
        self.sk = sk


@lru_cache(maxsize=64)
def _split(base_url: str) -> SplitResult:
    """An endpoint's parts (a handful of endpoints, parsed once each)."""
    return urlsplit(base_url)


def sign_request(
    method: str,
    base_url: str,
    path: str,
    credentials: Credentials,
    project_id: str,
    now: datetime,
    *,
    query: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    user_agent: str | None = USER_AGENT,
) -> SignedRequest:
    """Sign one request; ``X-Project-Id`` always, ``X-Security-Token`` when there is one."""
    parts = _split(base_url)
    headers = {
        "Content-Type": CONTENT_TYPE,
        "X-Project-Id": project_id,
        "X-Sdk-Date": now.strftime(DATE_FORMAT),
    }
    if user_agent:
        headers["User-Agent"] = user_agent  # signed, as the vendor client does
    if credentials.security_token:
        headers["X-Security-Token"] = credentials.security_token
    request = SdkRequest(
        method=method,
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path.rstrip("/") + path,
        query_params=list(query),
        header_params=headers,
        body=body,
    )
    Signer(_Keys(credentials.ak, credentials.sk)).sign(request)
    url = f"{parts.scheme}://{parts.netloc}{request.uri}"
    return SignedRequest(method, url, dict(request.header_params), request.body or b"")
