"""`make run`: the function on every sample event in `events/`, against the bundled fake cloud.

Each event file runs against a freshly seeded fake (`tools/demo_seed.json`) served over HTTP on
127.0.0.1, so the samples do not depend on each other. Signed API Gateway samples (webhook,
Slack) are signed afresh with the sample secrets of `tools/samples.py`, which the run
configures. The function's JSON log lines are
suppressed (`--logs` sends them to stderr); stdout shows, per event file, one line per result
event and then the return value.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from fakecloud import FakeCloud, serve
from tools.samples import resign, sample_env

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SEED = Path(__file__).resolve().parent / "demo_seed.json"  # the fake cloud's demo state

# Fixed local demo credentials: the fake checks every signature against them.
DEMO_AK = "DEMOAKEVSEXPORT00001"
DEMO_SK = "demo-sk-evs-export-local-only-0000000001"
DEMO_PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DEMO_REGION = "cn-north-4"
ENDPOINT_VARS = ("EVS_ENDPOINT", "IMS_ENDPOINT", "ECS_ENDPOINT", "SMN_ENDPOINT")


def demo_env(url: str) -> dict[str, str]:
    """The function's environment for a fake cloud listening at ``url``."""
    env = {
        "REGION": DEMO_REGION,
        "PROJECT_ID": DEMO_PROJECT_ID,
        "HUAWEICLOUD_SDK_AK": DEMO_AK,
        "HUAWEICLOUD_SDK_SK": DEMO_SK,
        "FUNCTIONGRAPH_ENDPOINT": url,
        "LOG_LEVEL": "INFO",
    }
    env.update(dict.fromkeys(ENDPOINT_VARS, url))
    env.update(sample_env())  # the secrets the signed API Gateway samples were signed with
    return env


def new_cloud(seed: Mapping[str, Any]) -> FakeCloud:
    cloud = FakeCloud(ak=DEMO_AK, sk=DEMO_SK, project_id=DEMO_PROJECT_ID, region=DEMO_REGION)
    cloud.load_seed(seed)
    return cloud


def event_files(names: Sequence[str]) -> list[Path]:
    """The files named, else every ``events/*.json``, in sorted order."""
    if names:
        return [Path(n) for n in names]
    return sorted(EVENTS.glob("*.json"))


def summary_line(event: Mapping[str, Any]) -> str:
    """``type  volume  image_id/err-code  message`` for one result event."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(data, dict)
    volume = data.get("volume_id") or "-"
    error = data.get("error") if isinstance(data.get("error"), dict) else None
    if error is not None:
        ref = str(error.get("code", "-"))
        message = str(error.get("message", ""))
        status = error.get("http_status")
        if status is not None:
            message += f" (HTTP {status})"
    elif data.get("image_id"):
        ref = str(data["image_id"])
        message = f"image {data.get('image_name')!r} {data.get('status') or ''}".rstrip()
        if data.get("recovered"):
            message += " (found in IMS after an ambiguous failure)"
    elif event.get("type") == "evs.policy.completed":
        ref = f"policy {data.get('policy')!r}"
        counts = ("selected", "accepted", "skipped", "failed", "deferred", "deleted")
        message = ", ".join(f"{k} {data.get(k, 0)}" for k in counts)
    else:
        ref = "-"
        message = str(data.get("reason") or data.get("image_name") or "")
    return f"{event.get('type', '?'):<22}  {volume:<36}  {ref:<36}  {message}"


@contextlib.contextmanager
def log_sink(show_logs: bool) -> Iterator[TextIO]:
    """Where the function's log lines go while it runs: stderr, or nowhere."""
    target: TextIO = sys.stderr if show_logs else io.StringIO()
    # The function logs to whatever sys.stdout is when it configures logging, so swap it.
    with contextlib.redirect_stdout(target):
        yield target


def run_file(path: Path, seed: Mapping[str, Any], first: bool, show_logs: bool) -> bool:
    """Run one event file; print its results. False when the function reported a crash."""
    from function.app import invoke

    try:
        shown = path.relative_to(ROOT)
    except ValueError:
        shown = path
    print(f"=== {shown} " + "=" * max(3, 76 - len(str(shown))))
    # Signed API Gateway samples get fresh signatures, or their 5-minute window has passed.
    event = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(event, dict):
        event = resign(event, int(time.time()))
    cloud = new_cloud(seed)
    with serve(cloud) as server, log_sink(show_logs):
        result = invoke(event, None, cold_start=first, env=demo_env(server.url))
    body = result
    if "statusCode" in result and isinstance(result.get("body"), str):
        # An APIG response: the result events are in its JSON body.
        print(f"HTTP {result['statusCode']}")
        try:
            body = json.loads(result["body"])
        except ValueError:
            body = {}
    if isinstance(body, dict) and "response_type" in body:
        print(f"slack ({body['response_type']}): {body.get('text', '')}")
    events = body.get("results", []) if isinstance(body, dict) else []
    for ev in events:
        if isinstance(ev, dict):
            print(summary_line(ev))
    if isinstance(body, dict) and "summary" in body:
        counts = ", ".join(f"{k} {v}" for k, v in body["summary"].items())
        print(f"summary: {counts}; fake cloud saw {len(cloud.requests)} request(s)")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print()
    crashed = [
        ev
        for ev in events
        if isinstance(ev, dict)
        and isinstance(ev.get("data"), dict)
        and isinstance(ev["data"].get("error"), dict)
        and ev["data"]["error"].get("code") == "InternalError"
    ]
    return not crashed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run_local", description=__doc__)
    parser.add_argument("events", nargs="*", help="event files (default: events/*.json)")
    parser.add_argument("--seed", default=str(SEED), help="fake cloud seed")
    parser.add_argument("--logs", action="store_true", help="the function's logs to stderr")
    args = parser.parse_args(argv)

    seed = json.loads(Path(args.seed).read_text(encoding="utf-8"))
    files = event_files(args.events)
    if not files:
        print(f"no event files in {EVENTS}", file=sys.stderr)
        return 1
    print(
        f"evs-export, locally: {len(files)} event file(s) against the fake cloud "
        f"(seed {Path(args.seed).name}, region {DEMO_REGION}, demo credentials)\n"
    )
    ok = True
    for i, path in enumerate(files):
        ok = run_file(path, seed, first=i == 0, show_logs=args.logs) and ok
    if not args.logs:
        print("(the function's JSON log lines: python -m tools.run_local --logs)")
    if not ok:
        print("the function reported an InternalError: a bug, see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
