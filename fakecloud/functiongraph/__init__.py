"""FunctionGraph: asynchronous invocations, recorded in the backend's `invocations`."""

from fakecloud.functiongraph.errors import denied, fgs_error
from fakecloud.functiongraph.models import FunctionGraphBackend
from fakecloud.functiongraph.routes import ROUTES, invoke_async

__all__ = ["ROUTES", "FunctionGraphBackend", "denied", "fgs_error", "invoke_async"]
