"""Before and after, side by side: `python -m bench.compare [--base REV] [--pairs N]`.

The tree at ``REV`` (default ``HEAD~1``) is exported with ``git archive`` into a temporary
directory, and the fan-out child (`bench.fanout.CHILD`, 1,000 tagged volumes, 16 in flight)
runs against both trees in turn, the order alternating, against one fake cloud served by this
process on 127.0.0.1 (so the children's CPU is the function's alone). Printed: the medians of
wall time, wall / physical limit and the child's CPU per volume, with and without the 50 ms
latency fault. Reported, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import fanout


def export_tree(rev: str, into: Path) -> None:
    """The files of ``rev`` under ``into`` (no checkout: the worktree is not touched)."""
    archive = subprocess.run(
        ["git", "archive", rev], cwd=fanout.ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--base", default="HEAD~1", help="the revision to compare against")
    parser.add_argument("--pairs", type=int, default=3, help="runs per side and latency")
    parser.add_argument("--volumes", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="evs-bench-base-") as tmp:
        export_tree(args.base, Path(tmp))
        trees = {f"before ({args.base})": Path(tmp), "after (worktree)": fanout.ROOT}
        for latency in (0.05, 0.0):
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
            with fanout.fake_server() as (cloud, url):
                for i in range(args.pairs):
                    names = list(trees) if i % 2 == 0 else list(reversed(trees))
                    for name in names:
                        fanout.ROOT = trees[name]
                        try:
                            data = fanout.child_run(
                                cloud, url, args.volumes, args.concurrency, latency
                            )
                        finally:
                            fanout.ROOT = trees["after (worktree)"]
                        runs[name].append((data["wall_s"], data["cpu_s"]))
            limit = 2 * args.volumes * latency / args.concurrency
            print(f"latency {latency * 1000:.0f} ms, {args.pairs} run(s) per side:")
            for name, values in runs.items():
                wall = statistics.median(w for w, _ in values)
                cpu = [c * 1000 / args.volumes for _, c in values]
                share = f", wall / limit {wall / limit:.2f}" if limit else ""
                print(
                    f"  {name}: wall {wall:.2f} s{share}, CPU per volume "
                    f"{statistics.median(cpu):.2f} ms ({', '.join(f'{c:.2f}' for c in cpu)})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
