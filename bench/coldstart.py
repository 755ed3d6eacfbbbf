"""Cold start and warm overhead: this function against the vendor SDK client, same export.

Both sides send the seed's example export once (`events/direct.json`) to the same fake cloud
on 127.0.0.1, reset to `tools/demo_seed.json` before every export:

- ours: `handler.handler(event, None)` (event validation, signing, the POST, the result
  event and its log lines);
- vendor: huaweicloudsdkevs 3.0.69 (the last release with `CinderExportToImage`),
  `EvsClient...with_credentials(BasicCredentials(ak, sk, project_id)).with_endpoint(url)`
  and one `cinder_export_to_image`.

Cold: each export in a fresh interpreter. The parent measures the subprocess end to end;
the child reports its own time from its first line to the export done, and its peak RSS.
Warm: one process, many exports through `function.app.invoke` vs the vendor client's warm
`cinder_export_to_image`. The machine is noisy: figures are medians, reported, never asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakecloud import FakeCloud, serve

ROOT = Path(__file__).resolve().parent.parent
EVENT_FILE = ROOT / "events" / "direct.json"
SEED_FILE = ROOT / "tools" / "demo_seed.json"
AK = "BENCHAKEVSEXPORT0001"
SK = "bench-sk-evs-export-local-only-000000001"
PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
REGION = "cn-north-4"
MARK = "BENCH "
UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# Each child starts timing on its first line; the rest is the one export it performs.
_PRELUDE = "import time as _t; _t0 = _t.perf_counter()\n"
_REPORT = """
import json as _j
_ms = (_t.perf_counter() - _t0) * 1000
# Peak RSS of this process image. Not ru_maxrss: Linux carries the parent's peak across
# fork and exec into it, so every child would report at least the benchmark's own size.
_hwm = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")]
if not _hwm:
    import resource as _r
    _hwm = [_r.getrusage(_r.RUSAGE_SELF).ru_maxrss]
print("BENCH " + _j.dumps({"ms": _ms, "rss_kb": _hwm[0], "ok": bool(_ok)}), flush=True)
"""
CHILD_BARE = _PRELUDE + "_ok = True\n" + _REPORT
CHILD_OURS = (
    _PRELUDE
    + """
import json, os
import handler
event = json.loads(os.environ["BENCH_EVENT"])
result = handler.handler(event, None)
_ok = result["summary"]["accepted"] == 1
"""
    + _REPORT
)
CHILD_VENDOR = (
    _PRELUDE
    + """
import json, os
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkevs.v2 import (
    CinderExportToImageOption, CinderExportToImageRequest, CinderExportToImageRequestBody,
    EvsClient,
)
env = os.environ
event = json.loads(env["BENCH_EVENT"])
opts = event["os-volume_upload_image"]
client = (
    EvsClient.new_builder()
    .with_credentials(
        BasicCredentials(env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"], env["PROJECT_ID"])
    )
    .with_endpoint(env["EVS_ENDPOINT"])
    .build()
)
option = CinderExportToImageOption(
    image_name=opts["image_name"], force=opts.get("force"),
    container_format=opts.get("container_format"), disk_format=opts.get("disk_format"),
    os_type=opts.get("__os_type"),
)
request = CinderExportToImageRequest(
    volume_id=event["volume_id"],
    body=CinderExportToImageRequestBody(os_volume_upload_image=option),
)
response = client.cinder_export_to_image(request)
_ok = bool(response.os_volume_upload_image.image_id)
"""
    + _REPORT
)
# The stack's floor: the least a script on the same libraries does for the same export.
CHILD_FLOOR = (
    _PRELUDE
    + """
import json, os
from datetime import datetime, timezone
from typing import Literal
import requests
import structlog
from pydantic import BaseModel, Field
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

class Upload(BaseModel):
    image_name: str = Field(min_length=1, max_length=128)
    force: bool = False
    container_format: Literal["ami", "ari", "aki", "ovf", "bare"] = "bare"
    disk_format: Literal["vhd", "zvhd", "zvhd2", "raw", "qcow2"] = "vhd"
    os_type: Literal["linux", "windows"] = Field("linux", alias="__os_type")

class Export(BaseModel):
    volume_id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$")
    upload: Upload = Field(alias="os-volume_upload_image")

class Keys:
    def __init__(self, ak, sk):
        self.ak, self.sk = ak, sk

env = os.environ
order = Export.model_validate(json.loads(env["BENCH_EVENT"]))
body = {"os-volume_upload_image": order.upload.model_dump(by_alias=True)}
base = env["EVS_ENDPOINT"]
scheme, host = base.split("://", 1)
req = SdkRequest(
    method="POST", schema=scheme, host=host,
    resource_path=f"/v2/{env['PROJECT_ID']}/volumes/{order.volume_id}/action",
    query_params=[],
    header_params={
        "Content-Type": "application/json;charset=UTF-8",
        "X-Project-Id": env["PROJECT_ID"],
        "X-Sdk-Date": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
    },
    body=json.dumps(body),
)
Signer(Keys(env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"])).sign(req)
resp = requests.post(base + req.uri, data=req.body, headers=req.header_params, timeout=(5, 30))
structlog.configure(processors=[
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.JSONRenderer(),
])
image_id = resp.json()["os-volume_upload_image"]["image_id"]
structlog.get_logger().info("evs.export.accepted", volume_id=order.volume_id, image_id=image_id)
_ok = resp.status_code == 202
"""
    + _REPORT
)
CHILD_OURS_IMPORT = _PRELUDE + "import handler, function.app\n_ok = True\n" + _REPORT
CHILD_VENDOR_IMPORT = (
    _PRELUDE
    + "from huaweicloudsdkcore.auth.credentials import BasicCredentials\n"
    + "from huaweicloudsdkevs.v2 import EvsClient, CinderExportToImageRequest\n"
    + "_ok = True\n"
    + _REPORT
)
# side -> (child code, extra environment)
CHILDREN: dict[str, tuple[str, dict[str, str]]] = {
    "bare": (CHILD_BARE, {}),
    "floor": (CHILD_FLOOR, {}),
    "ours_import": (CHILD_OURS_IMPORT, {}),
    "vendor_import": (CHILD_VENDOR_IMPORT, {}),
    "ours": (CHILD_OURS, {}),
    "ours_unthrottled": (CHILD_OURS, {"MAX_REQUESTS_PER_SECOND": "1000"}),
    "vendor": (CHILD_VENDOR, {}),
}


NO_EXPORT = ("bare", "ours_import", "vendor_import")


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def function_env(url: str, **extra: str) -> dict[str, str]:
    """The function's settings for the fake at ``url`` (the vendor child reads the same)."""
    env = {
        "REGION": REGION,
        "PROJECT_ID": PROJECT_ID,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "LOG_LEVEL": "INFO",
    }
    for service in ("EVS", "IMS", "ECS", "SMN", "FUNCTIONGRAPH"):
        env[f"{service}_ENDPOINT"] = url
    env.update(extra)
    return env


@dataclass
class Fake:
    """The fake cloud on loopback, reset to the seed before each export."""

    cloud: FakeCloud
    url: str
    seed: Mapping[str, Any]

    def reset(self) -> None:
        self.cloud.reset()
        self.cloud.load_seed(self.seed)

    def exports_done(self) -> int:
        return len(self.cloud.ims.images)

    def requests_seen(self) -> int:
        return len(self.cloud.requests)

    def requests_made(self) -> list[str]:
        """The requests since the last reset, IDs replaced by their names."""
        out = []
        for r in self.cloud.requests:
            path = r.path.replace(PROJECT_ID, "{project_id}")
            path = re.sub(UUID_RE, "{id}", path)
            query = "?" + "&".join(sorted(r.query)) if r.query else ""
            out.append(f"{r.method} {r.service} {path}{query} -> {r.status}")
        return out


@contextlib.contextmanager
def running_fake() -> Iterator[Fake]:
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT_ID, region=REGION)
    with serve(cloud) as server:
        fake = Fake(cloud, server.url, load_json(SEED_FILE))
        fake.reset()
        yield fake


@dataclass
class Sample:
    wall_ms: float
    child_ms: float
    rss_mb: float
    requests: int
    result_ms: float = 0.0  # from the spawn to the child's result line (before its exit)


@dataclass
class ColdResult:
    runs: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def median(self, side: str, attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in self.samples[side]))

    def spread(self, side: str, attr: str) -> tuple[float, float]:
        values = [getattr(s, attr) for s in self.samples[side]]
        return min(values), max(values)


def run_child(side: str, fake: Fake, env: Mapping[str, str]) -> Sample:
    """One fresh interpreter doing one export; the fake must record exactly that export."""
    code, extra = CHILDREN[side]
    fake.reset()
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**env, **extra},
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        assert proc.stdout is not None
        out: list[str] = []
        result = 0.0
        for line in proc.stdout:  # the result line comes before the interpreter's teardown
            out.append(line)
            if line.startswith(MARK):
                result = (time.perf_counter() - start) * 1000
        proc.wait()
        wall = (time.perf_counter() - start) * 1000
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    stdout = "".join(out)
    lines = [x for x in stdout.splitlines() if x.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{side} child failed ({proc.returncode}):\n{stderr[-2000:]}")
    report = json.loads(lines[-1][len(MARK) :])
    expected = 0 if side in NO_EXPORT else 1
    if not report["ok"] or fake.exports_done() != expected:
        raise RuntimeError(
            f"{side} child did not export exactly once (ok={report['ok']}, "
            f"images={fake.exports_done()}):\n{stdout[-2000:]}{stderr[-2000:]}"
        )
    return Sample(
        wall,
        float(report["ms"]),
        float(report["rss_kb"]) / 1024,
        fake.requests_seen(),
        result,
    )


def child_env(fake: Fake, home: str) -> dict[str, str]:
    """The same environment for every child: the function's settings, a throwaway HOME
    (the vendor client writes ~/.huaweicloud/application_id) and the event."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env.update(function_env(fake.url))
    env.update(HOME=home, BENCH_EVENT=EVENT_FILE.read_text(encoding="utf-8"))
    return env


def cold_start(runs: int = 7, progress: Callable[[str], None] | None = None) -> ColdResult:
    """``runs`` rounds of fresh-process exports, one per side, in alternating order, after
    one discarded warm-up per side (which also compiles any missing .pyc)."""
    result = ColdResult(runs, {side: [] for side in CHILDREN})
    with running_fake() as fake, tempfile.TemporaryDirectory(prefix="evs-bench-home-") as home:
        env = child_env(fake, home)
        for side in CHILDREN:
            run_child(side, fake, env)
        for i in range(runs):
            order = list(CHILDREN) if i % 2 == 0 else list(reversed(CHILDREN))
            for side in order:
                result.samples[side].append(run_child(side, fake, env))
            if progress:
                progress(f"cold run {i + 1}/{runs}")
    return result


# -- warm overhead ------------------------------------------------------------------------


@dataclass
class WarmResult:
    calls: int
    rounds: int
    per_round_us: dict[str, list[float]] = field(default_factory=dict)
    requests: dict[str, list[str]] = field(default_factory=dict)

    def median(self, side: str) -> float:
        return float(statistics.median(self.per_round_us[side]))


def ours_call(fake: Fake, **extra_env: str) -> Callable[[], None]:
    from function.app import invoke

    event = load_json(EVENT_FILE)
    env = function_env(fake.url, **extra_env)

    def call() -> None:
        result = invoke(event, None, env=env)
        if result["summary"]["accepted"] != 1:
            raise RuntimeError(f"ours did not export: {json.dumps(result)[:1000]}")

    return call


def ours_export_only(fake: Fake) -> Callable[[], None]:
    """The layer that matches the vendor call: one signed export POST and its parsed answer
    (``EvsClient.export`` on a fresh ``CloudClient``, as each invocation builds), without
    the invocation around it: no event parsing, IMS lookup, tagging, result event or log."""
    from function.cloud.client import CloudClient
    from function.cloud.evs import EvsClient
    from function.cloud.transport import default_transport
    from function.config import Settings
    from function.model import UploadOptions
    from function.runtime import Runtime

    event = load_json(EVENT_FILE)
    settings = Settings.from_env(function_env(fake.url, MAX_REQUESTS_PER_SECOND="1000"))
    volume_id = str(event["volume_id"])
    upload = UploadOptions.from_wire(event["os-volume_upload_image"])

    def call() -> None:
        client = CloudClient(settings, Runtime(), default_transport())
        accepted = EvsClient(client).export(volume_id, upload, lambda _: None)
        if not accepted.image_id:
            raise RuntimeError("ours (export only) did not export")

    return call


def vendor_call(fake: Fake, home: str) -> Callable[[], None]:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkevs.v2 import (
        CinderExportToImageOption,
        CinderExportToImageRequest,
        CinderExportToImageRequestBody,
        EvsClient,
    )

    event = load_json(EVENT_FILE)
    opts = event["os-volume_upload_image"]
    saved = os.environ.get("HOME")
    os.environ["HOME"] = home  # build() writes ~/.huaweicloud/application_id
    try:
        client = (
            EvsClient.new_builder()
            .with_credentials(BasicCredentials(AK, SK, PROJECT_ID))
            .with_endpoint(fake.url)
            .build()
        )
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved

    def call() -> None:
        option = CinderExportToImageOption(
            image_name=opts["image_name"],
            force=opts.get("force"),
            container_format=opts.get("container_format"),
            disk_format=opts.get("disk_format"),
            os_type=opts.get("__os_type"),
        )
        request = CinderExportToImageRequest(
            volume_id=event["volume_id"],
            body=CinderExportToImageRequestBody(os_volume_upload_image=option),
        )
        response = client.cinder_export_to_image(request)
        if not response.os_volume_upload_image.image_id:
            raise RuntimeError("vendor did not export")

    return call


WARM_SIDES = ("ours", "ours_unthrottled", "ours_export_only", "vendor")


def warm_overhead(
    calls: int = 300,
    rounds: int = 3,
    warmup: int = 20,
    progress: Callable[[str], None] | None = None,
) -> WarmResult:
    """Median µs per export, per round, for each side. Each round takes the sides in turn
    (their order rotating), and the fake is reset (untimed) before each export, so every
    export meets the same state."""
    result = WarmResult(calls, rounds, {side: [] for side in WARM_SIDES})
    with (
        running_fake() as fake,
        tempfile.TemporaryDirectory(prefix="evs-bench-home-") as home,
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),  # the function's log lines
    ):
        sides = {
            "ours": ours_call(fake),
            "ours_unthrottled": ours_call(fake, MAX_REQUESTS_PER_SECOND="1000"),
            "ours_export_only": ours_export_only(fake),
            "vendor": vendor_call(fake, home),
        }
        counts = {side: calls for side in sides}
        for side, call in sides.items():
            for _ in range(warmup):
                fake.reset()
                call()
            result.requests[side] = fake.requests_made()
        for r in range(rounds):
            times: dict[str, list[float]] = {side: [] for side in sides}
            for i in range(calls):
                names = list(sides)
                order = names[i % len(names) :] + names[: i % len(names)]
                for side in order:
                    if len(times[side]) >= counts[side]:
                        continue
                    fake.reset()
                    start = time.perf_counter()
                    sides[side]()
                    times[side].append((time.perf_counter() - start) * 1e6)
                    if fake.exports_done() != 1:
                        raise RuntimeError(f"{side}: the fake did not record one export")
            for side, values in times.items():
                result.per_round_us[side].append(statistics.median(values))
            if progress:
                progress(f"warm round {r + 1}/{rounds}")
    return result
