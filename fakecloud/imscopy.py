"""The former path of IMS replication, sharing and jobs: now fakecloud.ims.copy_models (state)
and fakecloud.ims.copy_routes (HTTP); their names stay importable here."""

from fakecloud.ims.copy_models import (
    COPY_JOB_TYPE,
    DEFAULT_SIZE_LIMIT_GB,
    FAIL_CODE,
    FINAL,
    MAX_COPIES_IN_FLIGHT,
    MAX_MEMBERS,
    OUTCOMES,
    SHARE_JOB_TYPE,
    SIZE_LIMIT_GB,
    Job,
    Jobs,
    is_encrypted,
    size_limit,
)
from fakecloud.ims.copy_routes import (
    ROUTES,
    add_members,
    copy_cross_region,
    show_job,
    show_job_progress,
)
from fakecloud.progress import MODES

__all__ = [
    "COPY_JOB_TYPE",
    "DEFAULT_SIZE_LIMIT_GB",
    "FAIL_CODE",
    "FINAL",
    "MAX_COPIES_IN_FLIGHT",
    "MAX_MEMBERS",
    "MODES",
    "OUTCOMES",
    "ROUTES",
    "SHARE_JOB_TYPE",
    "SIZE_LIMIT_GB",
    "Job",
    "Jobs",
    "add_members",
    "copy_cross_region",
    "is_encrypted",
    "show_job",
    "show_job_progress",
    "size_limit",
]
