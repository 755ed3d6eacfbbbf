"""IMS: private images, export progress, tags; replication, sharing and jobs across regions.

`models` and `routes` hold one region's images; `copy_models` and `copy_routes` the account's
jobs (cross-region replication, sharing); `errors` the bodies. ROUTES is the service's table.
"""

from fakecloud.base import Route
from fakecloud.ims import copy_routes, routes
from fakecloud.ims.errors import bad_param, denied, ims_error, not_found
from fakecloud.ims.models import (
    FINAL,
    MAX_KEY,
    MAX_TAGS,
    MAX_VALUE,
    OUTCOMES,
    ExportJob,
    Image,
    ImsBackend,
    check_tags,
)
from fakecloud.ims.routes import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    TAG_QUERY_DEFAULT_LIMIT,
    backend,
    delete_image,
    filter_images,
    list_images,
    list_tags,
    show_image,
    tag_action,
)
from fakecloud.progress import MODES

ROUTES: list[Route] = [*routes.ROUTES, *copy_routes.ROUTES]

__all__ = [
    "DEFAULT_LIMIT",
    "FINAL",
    "MAX_KEY",
    "MAX_LIMIT",
    "MAX_TAGS",
    "MAX_VALUE",
    "MODES",
    "OUTCOMES",
    "ROUTES",
    "TAG_QUERY_DEFAULT_LIMIT",
    "ExportJob",
    "Image",
    "ImsBackend",
    "backend",
    "bad_param",
    "check_tags",
    "delete_image",
    "denied",
    "filter_images",
    "ims_error",
    "list_images",
    "list_tags",
    "not_found",
    "show_image",
    "tag_action",
]
