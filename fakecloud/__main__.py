"""`python -m fakecloud --port N --seed FILE [--iam-policy FILE] [--region-port REGION=PORT]`.

Serves on 127.0.0.1:N; each `--region-port` also serves that region's IMS (a region of the
seed's `regions`) on its own port.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from fakecloud.core import FakeCloud
from fakecloud.server import FakeCloudServer


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, seed the cloud, print the URL once listening, serve until stopped."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m fakecloud", description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--seed", help="JSON seed file (CONTRACT.md section 6)")
    parser.add_argument("--ak", default=env.get("HUAWEICLOUD_SDK_AK"))
    parser.add_argument("--sk", default=env.get("HUAWEICLOUD_SDK_SK"))
    parser.add_argument("--project-id", default=env.get("HUAWEICLOUD_SDK_PROJECT_ID"))
    parser.add_argument("--security-token", default=env.get("HUAWEICLOUD_SDK_SECURITY_TOKEN"))
    parser.add_argument("--region", default="cn-north-4")
    parser.add_argument("--project-name", help="the home project's name (default: the region)")
    parser.add_argument(
        "--region-port",
        action="append",
        default=[],
        metavar="REGION=PORT",
        help="also serve IMS of REGION (from the seed's regions) on PORT (0 picks a free one)",
    )
    parser.add_argument("--progress", choices=("immediate", "polls", "duration"))
    parser.add_argument("--progress-after", type=float, default=0.0)
    parser.add_argument(
        "--iam-policy",
        metavar="FILE",
        help="enforce this IAM custom policy (JSON); requests it does not allow get 403",
    )
    args = parser.parse_args(argv)
    for name, env_name in (
        ("ak", "HUAWEICLOUD_SDK_AK"),
        ("sk", "HUAWEICLOUD_SDK_SK"),
        ("project_id", "HUAWEICLOUD_SDK_PROJECT_ID"),
    ):
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} or {env_name} is required")
    policy = None
    if args.iam_policy:
        with open(args.iam_policy, encoding="utf-8") as fh:
            policy = json.load(fh)
    try:
        cloud = FakeCloud(
            ak=args.ak,
            sk=args.sk,
            project_id=args.project_id,
            region=args.region,
            security_token=args.security_token or None,
            iam_policy=policy,
            project_name=args.project_name,
        )
    except ValueError as exc:
        parser.error(f"--iam-policy {args.iam_policy}: {exc}")
    if args.seed:
        with open(args.seed, encoding="utf-8") as fh:
            cloud.load_seed(json.load(fh))
    if args.progress:
        cloud.set_progress(args.progress, args.progress_after)
    extra: list[FakeCloudServer] = []
    for spec in args.region_port:
        region, sep, port = spec.partition("=")
        if not sep or not port.isdigit() or region not in cloud.regions or region == cloud.region:
            parser.error(f"--region-port {spec}: expected REGION=PORT for a region of the seed")
        extra.append(FakeCloudServer(cloud, int(port), region=region))
    server = FakeCloudServer(cloud, args.port)
    print(f"fakecloud listening on {server.url}", flush=True)
    for other in extra:
        other.start()
        print(f"fakecloud region {other.region} listening on {other.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for other in extra:
            other.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
