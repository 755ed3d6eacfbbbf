"""Where the fan-out's CPU goes: `python -m bench.profile [--volumes N] [--top K]`.

The fake cloud is served over HTTP on 127.0.0.1 by this process; the function runs in a fresh
child interpreter under cProfile, so the profile and the CPU figures are the function's own
(the fake's work is in the parent). No latency fault; ``MAX_CONCURRENCY=1`` by default
(``--concurrency 16`` as the fan-out runs; each thread gets its own profiler, merged at the
end, with CPU time as the clock). Prints the child's CPU
per volume (``time.process_time`` around the invocation, with and without the profiler) and
the top entries by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench import fanout

CHILD = """
import cProfile, io, json, os, pstats, sys, threading, time
import handler
from function import log
if os.environ.get("FANOUT_VIA_HANDLER") == "1":
    handler._import_app()  # as handler.handler's cold path does
from function.app import invoke

event = json.loads(os.environ["FANOUT_EVENT"])
log.use_stream(open(os.devnull, "w"))
env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
profile = os.environ.get("FANOUT_PROFILE") == "1"
prof = cProfile.Profile(time.thread_time) if profile else None
threads = []
if profile:  # one profiler per worker thread, merged at the end
    _run = threading.Thread.run

    def _profiled_run(self):
        p = cProfile.Profile(time.thread_time)
        threads.append(p)
        p.enable()
        try:
            _run(self)
        finally:
            p.disable()

    threading.Thread.run = _profiled_run
c0 = time.process_time()
import resource
ru0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
if prof is not None:
    prof.enable()
result = invoke(event, None, env=env)
if prof is not None:
    prof.disable()
wall = time.perf_counter() - t0
cpu = time.process_time() - c0
ru1 = resource.getrusage(resource.RUSAGE_SELF)
sys_s = ru1.ru_stime - ru0.ru_stime
if prof is not None:
    top = int(os.environ.get("FANOUT_TOP", "25"))
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        st = pstats.Stats(prof, *threads, stream=out).strip_dirs().sort_stats(key)
        st.print_stats(top)
        if key == "tottime" and os.environ.get("FANOUT_CALLERS"):
            st.print_callers(os.environ["FANOUT_CALLERS"])
        if key == "tottime" and os.environ.get("FANOUT_CALLEES"):
            st.print_callees(os.environ["FANOUT_CALLEES"])
        sys.stderr.write(out.getvalue())
report = {"wall_s": wall, "cpu_s": cpu, "sys_s": sys_s, "summary": result.get("summary")}
print("FANOUT " + json.dumps(report), flush=True)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--volumes", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument(
        "--plain-import",
        action="store_true",
        help="import function.app without handler's cold path",
    )
    parser.add_argument("--callers", default="", help="also print the callers of these entries")
    parser.add_argument("--callees", default="", help="also print what these entries call")
    args = parser.parse_args(argv)
    via = {} if args.plain_import else {"FANOUT_VIA_HANDLER": "1"}
    with fanout.fake_server() as (cloud, url):
        plain = fanout.child_run(
            cloud, url, args.volumes, args.concurrency, args.latency, CHILD, via, echo=False
        )
        profiled = fanout.child_run(
            cloud,
            url,
            args.volumes,
            args.concurrency,
            args.latency,
            CHILD,
            {
                **via,
                "FANOUT_PROFILE": "1",
                "FANOUT_TOP": str(args.top),
                "FANOUT_CALLERS": args.callers,
                "FANOUT_CALLEES": args.callees,
            },
            echo=True,
        )
    for label, data in (("plain", plain), ("under cProfile", profiled)):
        cpu_ms = data["cpu_s"] * 1000 / args.volumes
        print(
            f"{label}: {args.volumes} volumes, wall {data['wall_s']:.2f} s, "
            f"function CPU {data['cpu_s']:.2f} s = {cpu_ms:.2f} ms per volume "
            f"(of which system {data['sys_s']:.2f} s), "
            f"summary {data['summary']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
