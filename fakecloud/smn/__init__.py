"""SMN: publish to a topic; every accepted message is recorded in the backend's `messages`."""

from fakecloud.smn.errors import denied, smn_error
from fakecloud.smn.models import SmnBackend
from fakecloud.smn.routes import MAX_MESSAGE_BYTES, ROUTES, publish

__all__ = ["MAX_MESSAGE_BYTES", "ROUTES", "SmnBackend", "denied", "publish", "smn_error"]
