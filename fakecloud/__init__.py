"""A moto-like fake of the Huawei Cloud APIs the function uses (EVS, ECS, IMS, SMN, FunctionGraph).

Layout: one package per service (`evs`, `ecs`, `ims`, `smn`, `functiongraph`) with `models`
(state and rules), `routes` (HTTP handlers and the route table, each route naming its IAM
action) and `errors`; `services` lists them; `backends` keys every backend by service, region
and project; `core` is the one dispatch path; `control` the `/_fake/` route table;
`snapshot` the seed and state JSON; `progress` the transitions of asynchronous work.

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

Regions (fakecloud.ims.copy_models, PLATFORM.md 10.8): the home region serves every service; IMS
also runs in regions added by `cloud.add_region(region, project_id, project_name=None)` (the
name defaults to the region ID), `POST /_fake/regions` `{"region", "project_id",
"project_name"?}`, or the seed key `"regions": {"cn-east-3": {"project_id": "...",
"project_name": "cn-east-3", "images": [...]}}`. Each region has its own project (requests
there carry its project ID in the path or `X-Project-Id`) and the same credentials; `reset()`
keeps regions and empties them. A target region's IMS is `https://ims.{region}.myhuaweicloud.com`
in process (any region's IMS host is intercepted; one not added is a ConnectionError), and a
second port over HTTP: `serve(cloud, region="cn-east-3")` or `python -m fakecloud
--region-port cn-east-3=PORT`. `state()` shows `regions` (each with `project_id`,
`project_name`, `images`, `members`), `members`, `jobs` and `copy_progress`.
`POST /v1/cloudimages/{image_id}/cross_region_copy` starts a replication job read with `GET
/v1/{project_id}/jobs/{job_id}` or `GET /v1/cloudimages/job/{job_id}`; it finishes like an
export: `cloud.set_copy_progress("immediate" | "polls" | "duration", after, "SUCCESS" |
"FAIL")`, `cloud.jobs.set_outcome(replica_name, "FAIL")`, or `POST /_fake/copy_progress`
`{"mode", "after", "outcome", "outcomes": {name: outcome}}`. `POST /v1/cloudimages/members`
shares images (members recorded `pending`).

IAM (fakecloud.iam, PLATFORM.md 10.6), off by default: `FakeCloud(iam_policy=doc)`,
`cloud.set_iam_policy(doc | None)`, `POST /_fake/iam` (body = doc), `DELETE /_fake/iam`,
`GET /_fake/iam`, or `python -m fakecloud --iam-policy FILE` enforce a custom policy
`{"Version": "1.1", "Statement": [{"Effect": "Allow"|"Deny", "Action": [...]}]}`: a signed
request whose action (named by its route, `fakecloud.iam.ACTIONS`) it does not allow gets 403
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
