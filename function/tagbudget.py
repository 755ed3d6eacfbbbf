"""Room for a volume's own tags on its image (``copy_tags``), within IMS's limits: at most 10
tags per image, keys of at most 36 characters, values of at most 43 (PLATFORM.md 10.3).

Every tag the function writes, now or later in the image's life, is counted first:

==============================  =====================================  =================
tag                             what                                   written by
==============================  =====================================  =================
``evs-export``                  marker ``managed``                     export (accepted)
``evs-export-volume``           source volume ID                       export
``evs-export-policy``           policy (``none`` outside a policy)     export
``evs-export-trigger``          trigger that asked for it              export
``evs-export-started``          export start, epoch s; a policy run    export
                                adds ``-<run trigger time>``
``evs-export-reported``         completion reported; with              reconcile;
                                ``share_with``, ``.shared-<hash>``     sharing
``evs-export-orphaned``         orphan reported                        policy run
``evs-export-copy-<region>``    cross-region copy state, one per       copies
                                target, at most 2 targets              (function.copies)
==============================  =====================================  =================

That leaves ``COPY_ROOM`` (1) tag for copied ones. Pure: no requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_IMAGE_TAGS = 10
MAX_KEY_CHARS = 36
MAX_VALUE_CHARS = 43
RESERVED_PREFIX = "evs-export"
PROVENANCE = 5  # marker, volume, policy, trigger, started (with the run's time)
WRITTEN_LATER = 2  # reported, orphaned
COPY_STATE = 2  # one per cross-region copy target, at most 2 targets
COPY_ROOM = MAX_IMAGE_TAGS - PROVENANCE - WRITTEN_LATER - COPY_STATE
_FORBIDDEN = re.compile(r"[=*<>\\,|/]")


def copyable(key: str, value: str) -> bool:
    """Whether IMS would take this tag as it is and it is not one of the function's own."""
    return (
        0 < len(key) <= MAX_KEY_CHARS
        and len(value) <= MAX_VALUE_CHARS
        and not key.lower().startswith(RESERVED_PREFIX)
        and not _FORBIDDEN.search(key + value)
        and key == key.strip(" ")
        and value == value.strip(" ")
    )


def copied_tags(
    volume_tags: Mapping[str, str], wanted: bool | tuple[str, ...], room: int = COPY_ROOM
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The volume tags to write onto its image and the keys that do not fit (too long, not
    allowed, or no room left), in the listed order (``True``: every tag, by key). A listed
    key the volume does not carry is neither copied nor dropped."""
    if wanted is False:
        return {}, ()
    keys = sorted(volume_tags) if wanted is True else [k for k in wanted if k in volume_tags]
    chosen: dict[str, str] = {}
    dropped: list[str] = []
    for key in keys:
        value = volume_tags[key]
        if len(chosen) < room and copyable(key, value):
            chosen[key] = value
        else:
            dropped.append(key)
    return chosen, tuple(dropped)
