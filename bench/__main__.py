"""`make bench`: cold start and warm overhead, this function against the vendor SDK client;
then the fan-out (`bench.fanout`) and the fault storm (`bench.storm`).

`python -m bench [--runs N] [--calls M] [--rounds R] [--write bench/RESULTS.md]`
prints the figures; `--write` also records them, with the machine and date, as Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.coldstart import ColdResult, WarmResult, cold_start, warm_overhead

SIDES = {
    "bare": "bare interpreter (baseline)",
    "floor": "stack floor: requests + structlog + pydantic + Signer, one export",
    "ours_import": "ours, imports only (handler, function.app)",
    "vendor_import": "vendor, imports only (credentials, evs.v2)",
    "ours": "ours, defaults (MAX_REQUESTS_PER_SECOND=10)",
    "ours_unthrottled": "ours, MAX_REQUESTS_PER_SECOND=1000",
    "ours_export_only": "ours, the export call alone (EvsClient.export)",
    "vendor": "vendor: huaweicloudsdkevs 3.0.69",
}
COLD_ATTRS = ("result_ms", "wall_ms", "child_ms", "rss_mb")
COLD_GOAL = 1.15  # ours above the bare interpreter / the stack floor above it


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    return (
        f"{os.cpu_count()} CPU(s) (nproc; {cpu_model()}), {platform.system()} "
        f"{platform.release()}, {platform.python_implementation()} {platform.python_version()}"
    )


def headline(cold: ColdResult, fan: Any) -> list[str]:
    """The four figures of issue 9 (items 4-5), from this run."""

    def above(side: str, base: str) -> str:
        bare = cold.median("bare", "result_ms")
        return ratio(cold.median(side, "result_ms") - bare, cold.median(base, "result_ms") - bare)

    per_volume = fan.median("cpu_s") * 1000 / fan.volumes
    return [
        "## Headline (this run)",
        "",
        f"- Fan-out, {fan.volumes} volumes: function CPU **{per_volume:.2f} ms per volume** "
        "(goal ≤ 1.8); wall time / physical limit "
        f"**{ratio(fan.median('wall_s'), fan.limit_s(2))}** (goal ≤ 1.3).",
        "- Cold start, to the result, above the bare interpreter: ours / stack floor "
        f"**{above('ours', 'floor')}** (goal ≤ {COLD_GOAL}); ours / vendor client "
        f"**{above('ours', 'vendor')}**.",
        "",
    ]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def cold_table(res: ColdResult) -> list[str]:
    rows = [
        "| | to the result ms (parent: spawn to the result line) | wall ms (parent: spawn "
        "to exit) | in-process ms (first line to export done) | peak RSS MB | requests sent |",
        "|---|---|---|---|---|---|",
    ]
    for side in res.samples:
        label = SIDES.get(side, side)
        cells = []
        for attr in COLD_ATTRS:
            low, high = res.spread(side, attr)
            cells.append(f"**{res.median(side, attr):.1f}** ({low:.1f}–{high:.1f})")
        cells.append(str(round(res.median(side, "requests"))))
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    for base in ("floor", "vendor"):
        for side in ("ours", "ours_unthrottled"):
            cells = [
                ratio(
                    res.median(side, a) - res.median("bare", a),
                    res.median(base, a) - res.median("bare", a),
                )
                for a in COLD_ATTRS
            ]
            goal = f" (goal ≤ {COLD_GOAL})" if base == "floor" else ""
            rows.append(
                f"| ratio above the bare interpreter, {SIDES[side]} / {SIDES[base]}{goal} | "
                + " | ".join(cells)
                + " | |"
            )
    return rows


def warm_table(res: WarmResult) -> list[str]:
    rows = [
        "| | median µs per export | per round | requests per export |",
        "|---|---|---|---|",
    ]
    for side in ("ours", "ours_unthrottled", "ours_export_only", "vendor"):
        rounds = ", ".join(f"{v:.0f}" for v in res.per_round_us[side])
        rows.append(
            f"| {SIDES[side]} | **{res.median(side):.0f}** | {rounds} | "
            f"{len(res.requests.get(side, []))} |"
        )
    for side in ("ours", "ours_unthrottled", "ours_export_only"):
        rows.append(
            f"| ratio {SIDES[side]} / vendor | "
            f"**{ratio(res.median(side), res.median('vendor'))}** | | |"
        )
    return rows


def requests_intro(warm: WarmResult) -> str:
    ours, vendor = (len(warm.requests.get(side, [])) for side in ("ours", "vendor"))
    if ours == vendor:
        return "What the fake saw per export:"
    return (
        f"The same export, but not the same work on the wire: {ours} request(s) against "
        f"{vendor}. What the fake saw per export:"
    )


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def report(
    cold: ColdResult, warm: WarmResult, when: datetime, load_before: str, load_after: str
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Measured {when:%Y-%m-%d %H:%M} UTC on {machine()} with `make bench` "
        f"(`python -m bench --runs {cold.runs} --calls {warm.calls} --rounds {warm.rounds}`). "
        "The machine is a shared VM and noisy: medians, with the range in brackets. These "
        "figures are reported, not asserted by any test. Load average before the run: "
        f"{load_before}; after: {load_after}.",
        "",
        "Both sides export the same volume, the seed's example (`events/direct.json`), "
        "against the same fake cloud (`fakecloud`, served on 127.0.0.1, reset to "
        "`tools/demo_seed.json` before every export; it checks every signature). The benchmark "
        "checks that each export made exactly one image.",
        "",
        "- **ours**: `handler.handler(event, None)` (in the warm loop "
        "`function.app.invoke(event, None, env=...)`), with the settings a deployment "
        "would have; its JSON log lines go to a pipe (cold) or /dev/null (warm).",
        "- **vendor**: huaweicloudsdkevs 3.0.69 (the last release with "
        "`CinderExportToImage`) on huaweicloudsdkcore 3.1.219: `EvsClient` built with "
        "`BasicCredentials(ak, sk, project_id)` and `with_endpoint(url)`, then one "
        "`cinder_export_to_image`.",
        "- **stack floor** (cold start only): the least a script on our own libraries does for "
        "the same export (`CHILD_FLOOR` in `bench/coldstart.py`): import `requests`, "
        "`structlog`, `pydantic` and huaweicloudsdkcore's `Signer`; validate the body with a "
        "small pydantic model; sign; one `requests.post` to the fake; one JSON log line with "
        "structlog.",
        "",
        requests_intro(warm),
        "",
        *[
            f"- {side}: " + "; ".join(f"`{r}`" for r in warm.requests.get(side, []))
            for side in ("ours", "vendor")
        ],
        "",
        "`MAX_REQUESTS_PER_SECOND` (default 10) is a token bucket with a burst of up to "
        "min(rate, `MAX_CONCURRENCY`) requests, so one export's few requests go at once; the "
        "`MAX_REQUESTS_PER_SECOND=1000` rows run the same code with a higher ceiling.",
        "",
        f"## Cold start: one export in a fresh interpreter ({cold.runs} runs per side)",
        "",
        "Each run starts every side once, in alternating order, after one discarded warm-up "
        "per side. *to the result*: measured by the parent from the spawn to the child's "
        "result line, i.e. interpreter start, imports and the export, without the "
        "interpreter's teardown (a FunctionGraph instance stays up after its first answer); "
        "the ratios above the bare interpreter subtract the bare side's figure of the same "
        "column. *wall*: measured by the parent around the subprocess (interpreter start "
        "to exit). *in-process*: the child's own `perf_counter` from its first line to the "
        "export done (imports included). *peak RSS*: the child's `VmHWM` (not `ru_maxrss`, "
        "which on Linux carries the parent's peak into the child across fork and exec).",
        "",
        *cold_table(cold),
        "",
        f"## Warm overhead: one process, {warm.rounds} rounds",
        "",
        f"Per round, {warm.calls} exports per side, the sides taking turns in rotating "
        "order. Ours calls `function.app.invoke` each time (settings, trigger, every request "
        "listed above, result event, log lines). *The export call alone* is the layer that "
        "matches the vendor call: one signed POST and its parsed answer through "
        "`function.cloud.evs.EvsClient.export` on a fresh `CloudClient`, as each invocation "
        "builds it. The vendor client is built once, then `cinder_export_to_image` is "
        "called each time (request models included). The fake "
        "runs in the same process and is reset before each export (untimed); its own time "
        "is in every figure alike.",
        "",
        *warm_table(warm),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=11, help="cold start runs per side")
    parser.add_argument("--calls", type=int, default=300, help="warm exports per round")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds")
    parser.add_argument("--write", metavar="FILE", help="also write the report (Markdown)")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"  ... {message}", file=sys.stderr, flush=True)

    print(f"machine: {machine()}")
    before = load()
    cold = cold_start(args.runs, progress)
    warm = warm_overhead(args.calls, args.rounds, progress=progress)
    text = report(cold, warm, datetime.now(timezone.utc), before, load())
    print(text)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        print(f"written to {args.write}")
    from bench import fanout, storm  # their sections are appended after the file is written

    fan = fanout.fanout(progress=progress)
    section = fanout.report(fan, datetime.now(timezone.utc))
    print(section)
    lines = headline(cold, fan)
    print("\n".join(lines))
    if args.write:
        fanout.write_section(Path(args.write), section)
        fanout.write_section(Path(args.write), "\n".join(lines), "## Headline (this run)")
        print(f"written to {args.write}")
    storm.main(["--write", args.write] if args.write else [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
