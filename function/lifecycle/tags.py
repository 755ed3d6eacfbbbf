"""Provenance: the tags the function writes on each image it makes (marker, volume, policy,
trigger, start and run time), within IMS's limits (PLATFORM.md 10.3)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from function.cloud.ims import ImsClient
from function.cloud.records import Accepted
from function.errors import ExportError
from function.work import ExportOrder

log = structlog.get_logger("evs_export.lifecycle")

MARKER_KEY = "evs-export"
MARKER_VALUE = "managed"
VOLUME_KEY = "evs-export-volume"
POLICY_KEY = "evs-export-policy"
TRIGGER_KEY = "evs-export-trigger"
STARTED_KEY = "evs-export-started"
REPORTED_KEY = "evs-export-reported"
ORPHANED_KEY = "evs-export-orphaned"
NO_POLICY = "none"
MAX_KEY_CHARS = 36
MAX_VALUE_CHARS = 43
_VALUE_BAD = re.compile(r"[^A-Za-z0-9._-]")
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def tag_value(text: str) -> str:
    """A value IMS accepts: letters, digits, ``.``, ``_`` and ``-``, at most 43 characters.
    Longer text keeps a prefix and a short hash, so distinct long values stay distinct."""
    clean = _VALUE_BAD.sub("-", text)
    if len(clean) <= MAX_VALUE_CHARS:
        return clean
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{clean[: MAX_VALUE_CHARS - 9]}-{digest}"


def policy_value(policy: str | None) -> str:
    return tag_value(policy) if policy else NO_POLICY


def started_value(now: datetime, run_time: datetime | None) -> str:
    """The ``evs-export-started`` value: the export's start in epoch seconds, and for a policy
    run ``-`` and the run's trigger time (one tag for both, to leave room under IMS's 10)."""
    start = str(int(now.timestamp()))
    return start if run_time is None else f"{start}-{int(run_time.timestamp())}"


def provenance_tags(order: ExportOrder, trigger: str, now: datetime) -> dict[str, str]:
    """The tags of an image made for ``order``: the marker, volume, policy, trigger, start
    (with the policy run's time), then the volume's tags ``copy_tags`` chose."""
    tags = {
        MARKER_KEY: MARKER_VALUE,
        VOLUME_KEY: tag_value(order.volume_id),
        POLICY_KEY: policy_value(order.policy),
        TRIGGER_KEY: tag_value(trigger),
        STARTED_KEY: started_value(now, order.run_time),
    }
    assert all(_KEY_RE.match(k) for k in tags)
    return {**order.image_tags, **tags}


def provenance_tagger(
    ims: ImsClient, trigger: str, clock: Callable[[], datetime]
) -> Callable[[ExportOrder, Accepted], Mapping[str, Any] | None]:
    """The exporter's ``after_accept`` hook: tag the new image. A failure never undoes nor
    hides the export: the accepted event carries ``tagging_error`` instead."""

    def after_accept(order: ExportOrder, accepted: Accepted) -> Mapping[str, Any] | None:
        tags = provenance_tags(order, trigger, clock())
        extra: dict[str, Any] = {"tags_dropped": list(order.tags_dropped)}
        if not order.tags_dropped:
            extra.clear()
        try:
            ims.tag_image(accepted.image_id, tags)
        except ExportError as exc:
            log.warning(
                "could not tag the new image",
                image_id=accepted.image_id,
                volume_id=order.volume_id,
                error=exc.as_dict(),
            )
            return {**extra, "tagging_error": {"code": exc.code, "message": exc.message}}
        except Exception as exc:  # a bug in tagging must not cost the accepted export
            log.exception("tagging crashed", image_id=accepted.image_id)
            return {
                **extra,
                "tagging_error": {
                    "code": "InternalError",
                    "message": f"unexpected {type(exc).__name__}",
                },
            }
        return extra or None

    return after_accept
