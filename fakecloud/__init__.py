"""A moto-like fake of the Huawei Cloud APIs the function uses (EVS, ECS, IMS, SMN, FunctionGraph).

In process: `with mock_cloud(ak=..., sk=..., project_id=...) as cloud:` routes the service
endpoints through `responses`. Over HTTP: `serve(cloud)` or `python -m fakecloud`.
Every request's SDK-HMAC-SHA256 signature is checked; the fake never imports the function.
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
