"""FunctionGraph state: the asynchronous invocations the fake accepted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud


class FunctionGraphBackend:
    """Recorded asynchronous invocations for one project and region."""

    def __init__(self, cloud: FakeCloud, region: str, project_id: str) -> None:
        self._cloud = cloud
        self.region = region
        self.project_id = project_id
        self.invocations: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forget every invocation."""
        self.invocations.clear()
