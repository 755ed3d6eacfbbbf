"""EVS: volumes, the export action (CinderExportToImage), listing and tag queries.

`models` holds the state, `routes` the HTTP handlers and their table, `errors` the bodies.
"""

from fakecloud.evs.errors import NOT_FOUND_MSG, bad_request, denied, evs_error, not_found
from fakecloud.evs.models import EvsBackend, Volume
from fakecloud.evs.routes import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    EXPORT_KEYS,
    IMAGE_NAME_RE,
    MAX_LIMIT,
    OS_TYPES,
    ROUTES,
    VOLUME_TYPE,
    export_volume,
    filter_volumes,
    list_volumes,
    show_volume,
    validate_export,
)
from fakecloud.tagquery import parse_tag_query, tags_match

__all__ = [
    "CONTAINER_FORMATS",
    "DISK_FORMATS",
    "EXPORT_KEYS",
    "IMAGE_NAME_RE",
    "MAX_LIMIT",
    "NOT_FOUND_MSG",
    "OS_TYPES",
    "ROUTES",
    "VOLUME_TYPE",
    "EvsBackend",
    "Volume",
    "bad_request",
    "denied",
    "evs_error",
    "export_volume",
    "filter_volumes",
    "list_volumes",
    "not_found",
    "parse_tag_query",
    "show_volume",
    "tags_match",
    "validate_export",
]
