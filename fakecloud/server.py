"""Server mode: a threaded HTTP server on 127.0.0.1 in front of a FakeCloud."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import time
import traceback
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakecloud.base import Request
from fakecloud.core import FakeCloud


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 stalls a burst of 16 concurrent connections

    def __init__(self, address: tuple[str, int], cloud: FakeCloud, region: str | None) -> None:
        self.cloud = cloud
        self.region = region
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Httpd

    def setup(self) -> None:
        """No Nagle delay between the header and body writes of a keep-alive reply."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the cloud's request log is the record."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reset(self) -> None:
        """Drop the connection with a TCP reset, answering nothing."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _dispatch(self) -> None:
        cloud = self.server.cloud
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = headers.get("host") or f"127.0.0.1:{self.server.server_address[1]}"
        url = f"http://{host}{self.path}"
        req = Request(self.command.upper(), url, headers, b"", region=self.server.region)
        fault = cloud.take_fault(req)
        if fault is not None and fault.reset == "before":
            cloud.process(req, fault)
            self._reset()
            return
        req.body = self._read_body()
        if fault is not None and fault.latency > 0:
            time.sleep(fault.latency)
        try:
            reply = cloud.process(req, fault)
        except Exception as exc:  # a bug in the fake: say so instead of hanging the client
            traceback.print_exc(file=sys.stderr)
            body = json.dumps({"error_code": "FAKE.0500", "error_msg": repr(exc)}).encode()
            self._write(500, {"Content-Type": "application/json"}, body)
            return
        if reply.reset is not None:
            self._reset()
            return
        self._write(reply.status, reply.headers, reply.body)

    def _write(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


class FakeCloudServer:
    """A running server; `url` is its base URL. Stop it with `stop()` or a `with` block.

    With `region` (one added by `cloud.add_region`) it is that region's IMS endpoint: its
    requests are for that region's project; the home region's other services are not there.
    """

    def __init__(
        self, cloud: FakeCloud, port: int = 0, host: str = "127.0.0.1", region: str | None = None
    ) -> None:
        if region is not None and region not in cloud.regions:
            raise ValueError(f"region {region!r} is not served; add it with cloud.add_region")
        self.cloud = cloud
        self.region = region
        self._httpd = _Httpd((host, port), cloud, region)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fakecloud-server",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeCloudServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> FakeCloudServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    cloud: FakeCloud, port: int = 0, host: str = "127.0.0.1", region: str | None = None
) -> FakeCloudServer:
    """Start serving `cloud` on host:port (0 = any free port) in a daemon thread.

    `region`: serve that region's IMS instead of the home region (a second port per region).
    """
    return FakeCloudServer(cloud, port, host, region).start()
