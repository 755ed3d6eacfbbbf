"""Plain records of what the cloud answered, with no HTTP stack behind them: triggers, work
and results use these without importing the clients, the transport or the SDK signer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accepted:
    """What the export's 202 said (or, after an ambiguous failure, what IMS showed)."""

    image_id: str
    image_name: str
    status: str | None
    disk_format: str | None
    container_format: str | None
    size_gb: int | None
    request_id: str | None
    recovered: bool = False


@dataclass(frozen=True)
class Server:
    """An ECS server and the volumes attached to it."""

    id: str
    name: str
    status: str
    tags: dict[str, str]
    volume_ids: tuple[str, ...]  # the system disk first
    system_volume_id: str | None
