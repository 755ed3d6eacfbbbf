"""`python -m fakecloud --port N --seed FILE [--iam-policy FILE]`: serve on 127.0.0.1:N."""

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
        )
    except ValueError as exc:
        parser.error(f"--iam-policy {args.iam_policy}: {exc}")
    if args.seed:
        with open(args.seed, encoding="utf-8") as fh:
            cloud.load_seed(json.load(fh))
    if args.progress:
        cloud.set_progress(args.progress, args.progress_after)
    server = FakeCloudServer(cloud, args.port)
    print(f"fakecloud listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
