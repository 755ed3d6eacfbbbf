"""A moto-like fake of the Huawei Cloud APIs the function uses (EVS, ECS, IMS, SMN, FunctionGraph).

In process: `with mock_cloud(ak=..., sk=..., project_id=...) as cloud:` routes the service
endpoints through `responses`. Over HTTP: `serve(cloud)` or `python -m fakecloud`.
Every request's SDK-HMAC-SHA256 signature is checked; the fake never imports the function.

Seed (CONTRACT.md section 6, `load_seed`, `POST /_fake/seed`, `--seed FILE`): `{"volumes":
[...], "servers": [...], "images": [...]}`. Beyond CONTRACT.md's keys a server may carry
`"stops_after": <seconds>`: a stop requested at seeding time that leaves it ACTIVE until that
many seconds of the fake clock have passed, then SHUTOFF (PLATFORM.md 10.4); null or absent
means not stopping. `EcsBackend.stop_server(server_id, after)` and `POST
/_fake/servers/{server_id}/stop` with `{"after": <seconds> | null}` start one later (null: a
stop that fails, ACTIVE forever). Image tags IMS would refuse (more than 10, key > 36 or
value > 43 characters) make the seed fail.

IAM (fakecloud.iam, PLATFORM.md 10.6), off by default: `FakeCloud(iam_policy=doc)`,
`cloud.set_iam_policy(doc | None)`, `POST /_fake/iam` (body = doc), `DELETE /_fake/iam`,
`GET /_fake/iam`, or `python -m fakecloud --iam-policy FILE` enforce a custom policy
`{"Version": "1.1", "Statement": [{"Effect": "Allow"|"Deny", "Action": [...]}]}`: a signed
request whose action (`fakecloud.iam.ACTIONS`, one per route) it does not allow gets 403
"Policy doesn't allow <action> to be performed." in the service's error body.
"""

from fakecloud.base import ManualClock
from fakecloud.core import ConnectionReset, FakeCloud, RecordedRequest
from fakecloud.ecs import Server
from fakecloud.evs import Volume
from fakecloud.faults import Fault
from fakecloud.ims import Image
from fakecloud.mock import current, mock_cloud
from fakecloud.server import FakeCloudServer, serve

__all__ = [
    "ConnectionReset",
    "FakeCloud",
    "FakeCloudServer",
    "Fault",
    "Image",
    "ManualClock",
    "RecordedRequest",
    "Server",
    "Volume",
    "current",
    "mock_cloud",
    "serve",
]
