"""The HTTP transport: one pooled ``requests`` session per warm container, and the one place
where library exceptions become ours."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from function.errors import TransportError

if TYPE_CHECKING:
    from requests import PreparedRequest
    from requests.adapters import HTTPAdapter


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    _json: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def request_id(self) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == "x-request-id":
                return value
        return None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON."""
        if not self._json:
            try:
                self._json.append(json.loads(self.body) if self.body else None)
            except ValueError:
                self._json.append(None)
        return self._json[0]


class Transport(Protocol):
    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: tuple[float, float],
    ) -> HttpResponse:
        """Send one request; raise TransportError when no answer came."""
        ...


class RequestsTransport:
    """Production transport over a pooled ``requests.Session`` (TLS verified, no redirects).

    An http(s) URL goes straight to the session's adapter as a ``PreparedRequest`` built
    here: the session's default headers, then ours, and ``Content-Length`` as ``requests``
    would set it. That skips per-request work this client never needs (cookie jars, hooks,
    environment proxies and settings merged anew, URL re-parsing and re-quoting: the signer
    has quoted it). Anything else takes the full ``Session.request`` path, for its errors.
    """

    def __init__(self, pool_size: int = 16) -> None:
        import requests

        self._session = requests.Session()
        adapter = _lean_adapter()(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.trust_env = False
        self._adapter = adapter
        self._defaults = tuple((k, str(v)) for k, v in self._session.headers.items())

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: tuple[float, float],
    ) -> HttpResponse:
        import requests

        try:
            if url.startswith(("https://", "http://")):
                resp = self._adapter.send(
                    self._prepare(method, url, headers, body),
                    stream=False,
                    timeout=timeout,
                    verify=True,
                    cert=None,
                    proxies={},
                )
            else:
                resp = self._session.request(
                    method,
                    url,
                    headers=dict(headers),
                    data=body or None,
                    timeout=timeout,
                    allow_redirects=False,
                    verify=True,
                )
            if not getattr(resp, "_content_consumed", True) and resp.raw is not None:
                # One read of the whole body, instead of Response.content's chunked loop.
                content: bytes = resp.raw.read(decode_content=True) or b""
            else:
                content = resp.content
        except requests.exceptions.ConnectTimeout:
            raise TransportError(
                "ConnectTimeout", "could not connect in time", maybe_sent=False
            ) from None
        except requests.exceptions.Timeout:
            raise TransportError("ReadTimeout", "no answer in time", maybe_sent=True) from None
        except requests.exceptions.SSLError as exc:
            raise TransportError(
                "TLSError", f"TLS failed: {_reason(exc)}", maybe_sent=False
            ) from None
        except requests.exceptions.ConnectionError as exc:
            refused = _never_connected(exc)
            code = "ConnectionRefused" if refused else "ConnectionReset"
            raise TransportError(
                code, f"connection failed: {_reason(exc)}", maybe_sent=not refused
            ) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise TransportError(
                "InvalidURL", f"bad URL: {_reason(exc)}", maybe_sent=False
            ) from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(
                "HttpError", f"request failed: {_reason(exc)}", maybe_sent=True
            ) from None
        return HttpResponse(resp.status_code, dict(resp.headers), content)

    def _prepare(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> PreparedRequest:
        """What ``Session.prepare_request`` would build for this signed request."""
        from requests import PreparedRequest
        from requests.structures import CaseInsensitiveDict

        prepared = PreparedRequest()
        prepared.method = method.upper()
        prepared.url = url
        merged: CaseInsensitiveDict[str] = CaseInsensitiveDict(self._defaults)
        merged.update(headers)
        if body:
            merged["Content-Length"] = str(len(body))
        elif prepared.method not in ("GET", "HEAD") and "Content-Length" not in merged:
            merged["Content-Length"] = "0"
        prepared.headers = merged
        prepared.body = body or None
        prepared.hooks = {"response": []}
        return prepared


def _lean_adapter() -> type[HTTPAdapter]:
    """``HTTPAdapter`` without the per-request work a few signed endpoints never need.

    Responses skip the cookie jar (no cloud API sets cookies, and none are sent) and the
    text encoding (bodies are parsed as JSON bytes). Without a proxy, the connection pool of
    an origin is looked up once and kept until the adapter closes (one per endpoint: a
    handful), and the request target is cut from the URL instead of re-parsed.
    ``send`` stays the library's own, so mocks that patch it work.
    """
    from requests import Response
    from requests.adapters import HTTPAdapter
    from requests.structures import CaseInsensitiveDict

    class LeanAdapter(HTTPAdapter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pools: dict[tuple[str, bool | str], Any] = {}

        def get_connection_with_tls_context(
            self,
            request: PreparedRequest,
            verify: Any,
            proxies: Any = None,
            cert: Any = None,
        ) -> Any:
            url = request.url
            plain = isinstance(url, str) and not proxies and cert is None
            origin = _origin(url) if plain and isinstance(url, str) else None
            if origin is None or not isinstance(verify, (bool, str)):
                return super().get_connection_with_tls_context(request, verify, proxies, cert)
            key = (origin, verify)
            pool = self._pools.get(key)
            if pool is None or pool.pool is None:  # pool.pool is None once it is closed
                pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
                self._pools[key] = pool
            return pool

        def close(self) -> None:
            """Close the kept pools too (the pool manager only forgets its own)."""
            pools, self._pools = list(self._pools.values()), {}
            for pool in pools:
                pool.close()
            super().close()

        def request_url(self, request: PreparedRequest, proxies: Any) -> str:
            url = request.url
            if not proxies and isinstance(url, str):
                target = _target(url)
                if target is not None:
                    return target
            return super().request_url(request, proxies)

        def build_response(self, req: PreparedRequest, resp: Any) -> Response:
            response = Response()
            response.status_code = resp.status
            response.headers = CaseInsensitiveDict(resp.headers)
            response.raw = resp
            response.reason = resp.reason
            response.url = req.url or ""
            response.request = req
            response.connection = self
            return response

    return LeanAdapter


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL without user info, else None."""
    if not url.startswith(("https://", "http://")):
        return None
    start = url.index("//") + 2
    ends = [i for i in (url.find(c, start) for c in "/?#") if i != -1]
    origin = url[: min(ends)] if ends else url
    return None if "@" in origin else origin


def _target(url: str) -> str | None:
    """The request target (path and query) of an absolute http(s) URL, as
    ``PreparedRequest.path_url`` gives it; None when the URL holds a fragment."""
    origin = _origin(url)
    if origin is None or "#" in url:
        return None
    rest = url[len(origin) :]
    if rest.startswith("?"):
        return "/" + rest
    return rest or "/"


def _never_connected(exc: BaseException) -> bool:
    """True when the failure happened before a connection existed (nothing was sent)."""
    from urllib3.exceptions import NewConnectionError

    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError):
            return True
        stack.extend(item.args)
        stack.append(getattr(item, "reason", None))
        stack.append(item.__cause__)
        stack.append(item.__context__)
    return False


def _reason(exc: BaseException) -> str:
    text = type(exc).__name__
    return text


_DEFAULT: list[RequestsTransport] = []
_LOCK = threading.Lock()


def default_transport() -> RequestsTransport:
    """The container's pooled transport, built on first use and kept while warm."""
    with _LOCK:
        if not _DEFAULT:
            _DEFAULT.append(RequestsTransport())
        return _DEFAULT[0]
