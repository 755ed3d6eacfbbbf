"""ECS: servers, their attached disks (derived from the EVS volumes' attachments), stops.

`models` holds the state (and the asynchronous stop), `routes` the HTTP handlers and their
table, `errors` the bodies.
"""

from fakecloud.ecs.errors import denied, not_found
from fakecloud.ecs.models import SYSTEM_DEVICES, EcsBackend, Server
from fakecloud.ecs.routes import ROUTES, list_attachments, show_server

__all__ = [
    "ROUTES",
    "SYSTEM_DEVICES",
    "EcsBackend",
    "Server",
    "denied",
    "list_attachments",
    "not_found",
    "show_server",
]
