"""Fan-out: one timer policy over 1,000 tagged volumes, every request 50 ms slow.

`python -m bench.fanout [--volumes N] [--runs R] [--latency S] [--concurrency C]
[--write bench/RESULTS.md]`

The fake cloud is served over HTTP on 127.0.0.1 (`fakecloud.serve`, a ThreadingHTTPServer:
one thread per connection) in this process, with a latency fault of 50 ms on every request.
Its listen backlog is 128 (the fake ships with it; socketserver's default of 5 made sixteen
connections opened at once now and then wait out a 1 s SYN retransmit, a stall of the fake,
not of the function); parallel probes in the report check it.
The function runs in a fresh child interpreter per run (`function.app.invoke` on a TIMER
event, `MAX_CONCURRENCY=16`, the highest `MAX_REQUESTS_PER_SECOND`), so its wall time and
peak RSS are its own and the two sides do not share a GIL. The fake counts what it receives
and how many requests are in flight inside it at once.

Per run: wall time of the invocation, requests per selected volume, peak in flight at the
fake, and the child's peak RSS (VmHWM) with its resident size before the invocation. One more
run under `tracemalloc` gives the Python heap's peak (its time is not reported). Figures are
medians, reported and never asserted; the physical limit is
`requests per volume x volumes x latency / concurrency`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fakecloud import FakeCloud, Fault, serve
from fakecloud.base import Request
from fakecloud.server import _Httpd

ROOT = Path(__file__).resolve().parent.parent
AK = "BENCHFANOUTAK0001"
SK = "bench-fanout-sk-local-only-0000000001"
PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
REGION = "cn-north-4"
MAX_RATE = "1000"  # the highest MAX_REQUESTS_PER_SECOND the settings accept
SECTION = "## Fan-out"
BACKLOG = 128  # the fake server's listen backlog during the runs (as shipped)
PROBES = 10
STALL_S = 0.5  # a probe this slow waited out a SYN retransmit
MARK = "FANOUT "
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PROJECT = re.compile(re.escape(PROJECT_ID))

CHILD = """
import json, os, sys, time
trace = os.environ.get("FANOUT_TRACEMALLOC") == "1"
if trace:
    import tracemalloc
from function import log
from function.app import invoke

def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

event = json.loads(os.environ["FANOUT_EVENT"])
log.use_stream(open(os.devnull, "w"))
env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
rss_before = vm("VmRSS")
if trace:
    tracemalloc.start()
import resource
c0 = time.process_time()
s0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
t0 = time.perf_counter()
result = invoke(event, None, env=env)
wall = time.perf_counter() - t0
cpu = time.process_time() - c0
sys_s = resource.getrusage(resource.RUSAGE_SELF).ru_stime - s0
heap_peak = tracemalloc.get_traced_memory()[1] if trace else None
print("FANOUT " + json.dumps({
    "wall_s": wall, "cpu_s": cpu, "sys_s": sys_s, "rss_before_kb": rss_before,
    "hwm_kb": vm("VmHWM"),
    "heap_peak_kb": heap_peak // 1024 if heap_peak is not None else None,
    "summary": result.get("summary"), "message": result.get("message"),
}), flush=True)
"""


class InFlight:
    """Counts requests inside the fake, from taking its fault (the latency included) to the
    end of processing."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._take = cloud.take_fault
        self._process = cloud.process
        setattr(cloud, "take_fault", self._take_fault)  # noqa: B010 - this instance only
        setattr(cloud, "process", self._process_request)  # noqa: B010

    def _take_fault(self, req: Request) -> Fault | None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        return self._take(req)

    def _process_request(self, req: Request, fault: Fault | None = None) -> Any:
        try:
            return self._process(req, fault)
        finally:
            with self._lock:
                self.current -= 1

    def reset(self) -> None:
        with self._lock:
            self.peak = self.current


@dataclass
class Run:
    wall_s: float
    requests: int
    peak_in_flight: int
    hwm_kb: int
    rss_before_kb: int
    summary: dict[str, int]
    message: str | None
    kinds: Counter[str] = field(default_factory=Counter)
    heap_peak_kb: int | None = None
    cpu_s: float = 0.0  # the child's process CPU over the invocation (the fake excluded)
    sys_s: float = 0.0  # of which in the kernel


@dataclass
class FanoutResult:
    volumes: int
    latency_s: float
    concurrency: int
    runs: list[Run]
    traced: Run | None
    probes: dict[int, list[float]]  # listen backlog -> seconds per parallel probe
    backlog: int  # the listen backlog the runs used
    floor: Run | None = None  # one run without the latency fault: the code's own cost

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.runs))

    def spread(self, attr: str) -> tuple[float, float]:
        values = [float(getattr(r, attr)) for r in self.runs]
        return min(values), max(values)

    def limit_s(self, per_volume: int) -> float:
        return per_volume * self.volumes * self.latency_s / self.concurrency


def volume_ids(n: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"evs-export-bench/fanout/{i}")) for i in range(n)]


def timer_event() -> dict[str, Any]:
    policy = {
        "policy": "fanout",
        "select": {"tags": {"backup": "fanout"}},
        "image_name": "{policy}-{volume_name}-{time:%Y%m%d-%H%M}",
        "force": True,
    }
    return {
        "version": "v1.0",
        "time": datetime.now(timezone.utc).isoformat(),
        "trigger_type": "TIMER",
        "trigger_name": "fanout",
        "user_event": json.dumps(policy),
    }


def kind(method: str, path: str) -> str:
    """A request's route, IDs and project replaced by placeholders."""
    path = _UUID.sub("{id}", _PROJECT.sub("{project_id}", path))
    return f"{method} {path}"


def probes(backlog: int, latency: float, n: int, times: int) -> list[float]:
    """``times`` parallel probes against a fresh server listening with ``backlog``."""
    saved = _Httpd.request_queue_size
    _Httpd.request_queue_size = backlog
    try:
        cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT_ID, region=REGION)
        with serve(cloud) as server:
            cloud.faults.add(Fault(path=r".*", latency=latency, times=-1))
            return [probe(server.url, n) for _ in range(times)]
    finally:
        _Httpd.request_queue_size = saved


def probe(url: str, n: int) -> float:
    """Seconds for ``n`` concurrent requests through the latency fault (unsigned: answered
    401 after the delay): about the latency when the server serves them in parallel."""
    import requests

    def one() -> None:
        requests.get(f"{url}/v2/{PROJECT_ID}/cloudvolumes/detail", timeout=10)

    threads = [threading.Thread(target=one) for _ in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def child_run(
    cloud: FakeCloud,
    url: str,
    volumes: int,
    concurrency: int,
    latency: float,
    code: str = CHILD,
    extra_env: dict[str, str] | None = None,
    echo: bool = False,
) -> dict[str, Any]:
    """Seed ``volumes`` tagged volumes, run ``code`` (the function) in a fresh child
    interpreter against ``url``, check one image per volume, and return the child's report.
    ``echo`` copies the child's stderr (a profile) to ours."""
    cloud.reset()
    for i, vid in enumerate(volume_ids(volumes)):
        cloud.evs.add_volume(id=vid, name=f"vol-{i:04d}", size=40, tags={"backup": "fanout"})
    # An export takes minutes: the run's own reconcile finds its images still in progress.
    cloud.set_progress("duration", 3600)
    if latency > 0:
        cloud.faults.add(Fault(path=r".*", latency=latency, times=-1))  # any method
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "REGION": REGION,
        "PROJECT_ID": PROJECT_ID,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "MAX_CONCURRENCY": str(concurrency),
        "MAX_REQUESTS_PER_SECOND": MAX_RATE,
        "FANOUT_EVENT": json.dumps(timer_event()),
        **{f"{s.upper()}_ENDPOINT": url for s in ("evs", "ims", "ecs", "smn", "functiongraph")},
        **(extra_env or {}),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if echo:
        sys.stderr.write(proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the fan-out child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    made = Counter(i.source_volume_id for i in cloud.ims._images.values())
    if len(made) != volumes or max(made.values()) != 1:
        raise RuntimeError(f"expected one image per volume, got {len(made)} volumes imaged")
    data: dict[str, Any] = json.loads(lines[-1][len(MARK) :])
    return data


@contextlib.contextmanager
def fake_server(backlog: int = BACKLOG) -> Iterator[tuple[FakeCloud, str]]:
    """The fake cloud served on 127.0.0.1 with listen backlog ``backlog``."""
    shipped = _Httpd.request_queue_size
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT_ID, region=REGION)
    _Httpd.request_queue_size = backlog
    try:
        server = serve(cloud)
    finally:
        _Httpd.request_queue_size = shipped
    with server:
        yield cloud, server.url


def one_run(
    cloud: FakeCloud,
    watch: InFlight,
    url: str,
    volumes: int,
    concurrency: int,
    latency: float,
    trace: bool,
) -> Run:
    watch.reset()
    extra = {"FANOUT_TRACEMALLOC": "1"} if trace else {}
    data = child_run(cloud, url, volumes, concurrency, latency, CHILD, extra)
    seen = [r for r in cloud.requests if r.service != "control"]
    return Run(
        wall_s=data["wall_s"],
        requests=len(seen),
        peak_in_flight=watch.peak,
        hwm_kb=data["hwm_kb"],
        rss_before_kb=data["rss_before_kb"],
        summary=data["summary"],
        message=data["message"],
        kinds=Counter(kind(r.method, r.path) for r in seen),
        heap_peak_kb=data["heap_peak_kb"],
        cpu_s=data["cpu_s"],
        sys_s=data["sys_s"],
    )


def fanout(
    volumes: int = 1000,
    runs: int = 3,
    latency: float = 0.05,
    concurrency: int = 16,
    tracemalloc_run: bool = True,
    progress: Any = None,
    backlog: int = BACKLOG,
) -> FanoutResult:
    shipped = _Httpd.request_queue_size
    tried = {b: probes(b, latency, concurrency, PROBES) for b in sorted({shipped, backlog})}
    cloud = FakeCloud(ak=AK, sk=SK, project_id=PROJECT_ID, region=REGION)
    watch = InFlight(cloud)
    _Httpd.request_queue_size = backlog
    try:
        server = serve(cloud)
    finally:
        _Httpd.request_queue_size = shipped
    with server:
        done: list[Run] = []
        for i in range(runs):
            if progress:
                progress(f"fan-out run {i + 1}/{runs}")
            done.append(
                one_run(cloud, watch, server.url, volumes, concurrency, latency, trace=False)
            )
        floor = None
        if latency > 0:
            if progress:
                progress("fan-out run without latency (the code's own cost)")
            floor = one_run(cloud, watch, server.url, volumes, concurrency, 0.0, trace=False)
        traced = None
        if tracemalloc_run:
            if progress:
                progress("fan-out run under tracemalloc")
            traced = one_run(cloud, watch, server.url, volumes, concurrency, latency, trace=True)
    return FanoutResult(volumes, latency, concurrency, done, traced, tried, backlog, floor)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def report(res: FanoutResult, when: datetime) -> str:
    per_volume = res.median("requests") / res.volumes
    wall = res.median("wall_s")
    low, high = res.spread("wall_s")
    limit2, limit1 = res.limit_s(2), res.limit_s(1)
    kinds: Counter[str] = res.runs[0].kinds
    per_kind = [f"- `{k}`: {n} ({n / res.volumes:.3f} per volume)" for k, n in kinds.most_common()]
    hwm = res.median("hwm_kb") / 1024
    before = res.median("rss_before_kb") / 1024
    heap = (
        f"{res.traced.heap_peak_kb / 1024:.1f} MB"
        if res.traced is not None and res.traced.heap_peak_kb is not None
        else "not measured"
    )
    summary = res.runs[0].summary
    ms = res.latency_s * 1000
    shipped = _Httpd.request_queue_size
    lines = [
        SECTION,
        "",
        f"Measured {when:%Y-%m-%d %H:%M} UTC with `python -m bench.fanout` "
        f"({len(res.runs)} runs, medians with the range in brackets; reported, not asserted). "
        f"A TIMER policy selecting {res.volumes} tagged volumes by tag, against the fake cloud "
        f"served on 127.0.0.1 (`fakecloud.serve`, a `ThreadingHTTPServer`) with a "
        f"{ms:.0f} ms latency fault on every request; the function in a fresh child "
        f"interpreter (`function.app.invoke`), `MAX_CONCURRENCY={res.concurrency}`, "
        f"`MAX_REQUESTS_PER_SECOND={MAX_RATE}` (the highest the settings accept: at most "
        f"{2 * res.volumes / float(MAX_RATE):.1f} s for {2 * res.volumes} requests, below the "
        "concurrency bound, so concurrency alone bounds the run). The fake's images stay in "
        "progress for an hour, as real exports do, so the run's own reconcile reports none. "
        f"The fake's listen backlog is {res.backlog} during the runs (as shipped: {shipped}; "
        "socketserver's default of 5 stalls such bursts; see the probes below).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| wall time of the invocation | **{wall:.2f} s** ({low:.2f}–{high:.2f}) |",
        f"| physical limit, 2 requests per volume (export + provenance tag): "
        f"2 × {res.volumes} × {ms:.0f} ms / {res.concurrency} | {limit2:.3f} s |",
        f"| ratio to that limit (the one that applies; goal ≤ 1.3) | **{ratio(wall, limit2)}** |",
        f"| function CPU per volume (the child's `time.process_time()` over the invocation; "
        f"the fake runs in this process, so none of its CPU is counted; goal ≤ 1.8 ms) | "
        f"**{res.median('cpu_s') * 1000 / res.volumes:.2f} ms** "
        f"({res.spread('cpu_s')[0] * 1000 / res.volumes:.2f}–"
        f"{res.spread('cpu_s')[1] * 1000 / res.volumes:.2f}; of which in the kernel "
        f"{res.median('sys_s') * 1000 / res.volumes:.2f} ms) |",
        f"| (limit for 1 request per volume, before provenance tags) | {limit1:.3f} s "
        f"(ratio {ratio(wall, limit1)}) |",
        f"| requests the fake received per selected volume (goal ≤ 2.1) | "
        f"**{per_volume:.3f}** ({res.median('requests'):.0f} in all) |",
        f"| peak requests in flight inside the fake | {res.median('peak_in_flight'):.0f} "
        f"(limit {res.concurrency}) |",
        f"| child peak RSS (VmHWM) | **{hwm:.1f} MB** (resident before the invocation: "
        f"{before:.1f} MB, so the fan-out added {hwm - before:.1f} MB) |",
        f"| Python heap peak during the invocation (tracemalloc, separate run) | {heap} |",
        *[
            f"| {res.concurrency} requests at once through the {ms:.0f} ms fault, listen "
            f"backlog {b}{' (as shipped)' if b == shipped else ''} | median "
            f"{statistics.median(v) * 1000:.0f} ms (serially {res.concurrency * ms:.0f} ms); "
            f"{sum(x > STALL_S for x in v)} of {len(v)} stalled about 1 s |"
            for b, v in res.probes.items()
        ],
        *(
            [
                f"| the same run without the latency fault (CPU cost of both sides on this "
                f"machine, the fake included) | {res.floor.wall_s:.2f} s (function CPU "
                f"{res.floor.cpu_s * 1000 / res.volumes:.2f} ms per volume) |"
            ]
            if res.floor is not None
            else []
        ),
        "",
        f"Outcome of each run: {summary}. Requests of the first run by route:",
        "",
        *per_kind,
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str, section: str = SECTION) -> None:
    """Put ``text`` into ``path`` as ``section`` (by default Fan-out), replacing an earlier one."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    start = old.find(section + "\n")
    if start == -1:
        new = old.rstrip("\n") + ("\n\n" if old.strip() else "") + text
    else:
        rest = old.find("\n## ", start + len(section))
        tail = old[rest + 1 :] if rest != -1 else ""
        new = old[:start] + text + ("\n" + tail if tail else "")
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--volumes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-tracemalloc", action="store_true")
    parser.add_argument("--backlog", type=int, default=BACKLOG, help="the fake's listen backlog")
    parser.add_argument("--write", metavar="FILE", help="also put the section into FILE")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"  ... {message}", file=sys.stderr, flush=True)

    res = fanout(
        args.volumes,
        args.runs,
        args.latency,
        args.concurrency,
        tracemalloc_run=not args.no_tracemalloc,
        progress=progress,
        backlog=args.backlog,
    )
    text = report(res, datetime.now(timezone.utc))
    print(text)
    if args.write:
        write_section(Path(args.write), text)
        print(f"written to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
