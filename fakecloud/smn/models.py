"""SMN state: the publications the fake accepted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakecloud.core import FakeCloud


class SmnBackend:
    """Recorded SMN publications for one project and region."""

    def __init__(self, cloud: FakeCloud, region: str, project_id: str) -> None:
        self._cloud = cloud
        self.region = region
        self.project_id = project_id
        self.messages: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forget every message."""
        self.messages.clear()
