"""Powertools-style JSON logs with structlog: a fixed key set, context reset per invocation,
and a redaction processor so that no secret reaches a log line."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, MutableMapping
from functools import lru_cache
from typing import Any, TextIO

import structlog

SERVICE = "evs-export"
_SECRET_KEYS = re.compile(
    r"(^|_|-)(sk|secret|secrets|password|token|authorization|signature|security_token)($|_|-)",
    re.IGNORECASE,
)
_AUTH_VALUE = re.compile(
    r"(SDK-HMAC-SHA256\s+Access=[^,\s]+,\s*SignedHeaders=[^,\s]+,\s*Signature=)[0-9a-fA-F]+"
)
_AUTH_SCHEME = "SDK-HMAC-SHA256"  # every _AUTH_VALUE match holds it
REDACTED = "***"


@lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether a key names a secret (log keys are few: the answer is remembered)."""
    return _SECRET_KEYS.search(key) is not None


class Redactor:
    """Masks secret-named keys and any registered secret value, wherever it appears."""

    def __init__(self) -> None:
        self._values: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def register(self, values: Iterable[str]) -> None:
        keep = {v for v in values if v and len(v) >= 4}
        with self._lock:
            self._values = tuple(sorted(keep | set(self._values), key=len, reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._values = ()

    def mask(self, value: Any) -> Any:
        """Only the registered secret values masked, anywhere in ``value`` (for results and
        deliveries, whose keys are never secret)."""
        if isinstance(value, str):
            for secret in self._values:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._values:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            if _AUTH_SCHEME not in value:
                return value
            return _AUTH_VALUE.sub(rf"\g<1>{REDACTED}", value)
        if isinstance(value, dict):
            return {
                k: (REDACTED if isinstance(k, str) and _secret_key(k) and v else self.scrub(v))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (bytes, bytearray)):
            return self.scrub(bytes(value).decode("utf-8", "replace"))
        if isinstance(value, BaseException):
            return self.scrub(repr(value))
        if isinstance(value, (set, frozenset)):
            return [self.scrub(v) for v in value]
        return self.scrub(str(value))  # whatever the renderer would print, masked first

    def __call__(
        self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        return self.scrub(dict(event_dict))  # type: ignore[no-any-return]


REDACTOR = Redactor()
_CONFIGURED: list[str] = []
_STREAM: list[TextIO | None] = [None]


def use_stream(stream: TextIO | None) -> None:
    """Send log lines to ``stream`` from the next ``configure`` on (None: the current stdout)."""
    _STREAM[0] = stream


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Set structlog up once per container (and again when the level or stream changes)."""
    stream = stream or _STREAM[0]
    key = f"{level}:{id(stream)}"
    if _CONFIGURED and _CONFIGURED[0] == key:
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _upper_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.format_exc_info,
            REDACTOR,
            structlog.processors.EventRenamer("message"),
            _key_order,
            structlog.processors.JSONRenderer(sort_keys=False, default=str),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),  # None: sys.stdout at write time
        cache_logger_on_first_use=False,
    )
    _CONFIGURED[:] = [key]


def _upper_level(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event_dict["level"] = str(event_dict.get("level", "info")).upper()
    return event_dict


_FIRST = (
    "level",
    "timestamp",
    "service",
    "message",
    "cold_start",
    "function_name",
    "function_version",
    "request_id",
    "correlation_id",
    "trigger",
)


def _key_order(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    ordered = {k: event_dict[k] for k in _FIRST if k in event_dict}
    ordered.update(event_dict)
    return ordered


def reset() -> None:
    """Logging as a new process has it: no structlog config or context keys, stdout as the
    stream, no registered secrets (for tests, which share one process; see ``function.testing``)."""
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    _STREAM[0] = None
    _CONFIGURED.clear()
    REDACTOR.clear()


def start_invocation(**keys: Any) -> None:
    """Clear the previous invocation's keys, then bind this one's."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=SERVICE, **keys)
