"""Settings read once per invocation from the environment and the FunctionGraph context.

Nothing here raises: malformed values are collected as ``problems`` and missing ones are
reported by the ``require_*`` accessors, each naming the variable to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from function.errors import ConfigError

SERVICES = ("evs", "ims", "ecs", "smn", "functiongraph")
_REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
REGION_IMS_PREFIX = "IMS_ENDPOINT_"  # + the region ID upper-cased, dashes as underscores
_PROJECT_RE = re.compile(r"^[0-9a-zA-Z]{1,64}$")


@dataclass(frozen=True)
class Credentials:
    """AK/SK, with the security token of temporary (agency) credentials."""

    ak: str
    sk: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    region: str | None = None
    project_id: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)
    credentials: Credentials | None = None
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    chat_allowed_users: frozenset[str] = frozenset()
    chat_allowed_channels: frozenset[str] | None = None
    result_webhook_url: str | None = None
    result_webhook_secret: str | None = field(default=None, repr=False)
    result_smn_topic_urn: str | None = None
    function_urn: str | None = None
    max_concurrency: int = 8
    max_requests_per_second: float = 10.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 5
    stop_wait_seconds: int = 600
    log_level: str = "INFO"
    problems: tuple[ConfigError, ...] = ()
    # IMS of other regions (``IMS_ENDPOINT_<REGION>``, e.g. IMS_ENDPOINT_CN_EAST_3), for copies.
    ims_region_endpoints: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str], context: Any = None) -> Settings:
        """Build settings from ``env`` (``os.environ`` in production) and the context."""
        read = _EnvReader(env)
        # Read in this order, so the first problem reported is the same as it always was.
        region, endpoints, ims_regions = read.region(), read.endpoints(), read.ims_regions()
        project_id, credentials = read.project(context), read.credentials(context)
        settings = cls(
            region=region,
            project_id=project_id,
            endpoints=endpoints,
            credentials=credentials,
            webhook_secrets=read.secrets("WEBHOOK_SECRETS"),
            slack_signing_secret=read.get("SLACK_SIGNING_SECRET"),
            chat_allowed_users=_id_set(read.get("CHAT_ALLOWED_USERS")) or frozenset(),
            chat_allowed_channels=_id_set(read.get("CHAT_ALLOWED_CHANNELS")),
            result_webhook_url=read.get("RESULT_WEBHOOK_URL"),
            result_webhook_secret=read.get("RESULT_WEBHOOK_SECRET"),
            result_smn_topic_urn=read.get("RESULT_SMN_TOPIC_URN"),
            function_urn=read.get("FUNCTION_URN"),
            max_concurrency=int(read.number("MAX_CONCURRENCY", 8, 1, 64, True)),
            max_requests_per_second=read.number("MAX_REQUESTS_PER_SECOND", 10.0, 0.1, 1000.0),
            stop_wait_seconds=int(read.number("CTS_STOP_WAIT_SECONDS", 600, 0, 3600, True)),
            log_level=read.log_level(),
            ims_region_endpoints=ims_regions,
        )
        return replace(settings, problems=tuple(read.problems))

    def endpoint(self, service: str) -> str:
        """Base URL of ``service``: the override, else the regional default."""
        if service in self.endpoints:
            return self.endpoints[service]
        if self.region is None:
            var = f"{service.upper()}_ENDPOINT"
            raise ConfigError(
                "REGION", f"REGION is not set (nor {var}): set REGION, e.g. cn-north-4"
            )
        if service == "ims" and self.region == "eu-west-101":
            return "https://ims.eu-west-101.myhuaweicloud.eu"
        return f"https://{service}.{self.region}.myhuaweicloud.com"

    def require_credentials(self) -> Credentials:
        if self.credentials is None:
            raise ConfigError(
                "HUAWEICLOUD_SDK_AK",
                "no credentials: give the function an agency, or set HUAWEICLOUD_SDK_AK and "
                "HUAWEICLOUD_SDK_SK",
            )
        return self.credentials

    def require_project(self) -> str:
        if self.project_id is None:
            raise ConfigError("PROJECT_ID", "no project: set PROJECT_ID (the project ID of REGION)")
        return self.project_id

    def secret_values(self) -> list[str]:
        """Every secret these settings hold, for the log redactor."""
        values = [*self.webhook_secrets]
        for value in (self.slack_signing_secret, self.result_webhook_secret):
            if value:
                values.append(value)
        if self.credentials is not None:
            values.append(self.credentials.sk)
            if self.credentials.security_token:
                values.append(self.credentials.security_token)
        return values


def _id_set(raw: str | None) -> frozenset[str] | None:
    if raw is None:
        return None
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def _context_value(context: Any, method: str) -> str | None:
    """Call a context getter if the runtime has it; an absent or failing getter is None."""
    getter = getattr(context, method, None)
    if not callable(getter):
        return None
    try:
        value = getter()
    except Exception:
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _context_credentials(context: Any) -> Credentials | None:
    ak = _context_value(context, "getSecurityAccessKey")
    sk = _context_value(context, "getSecuritySecretKey")
    if ak and sk:
        return Credentials(ak, sk, _context_value(context, "getSecurityToken"))
    return None


class _EnvReader:
    """Reads one setting at a time from the environment, collecting what is malformed as
    ``problems`` (each naming its variable) instead of raising."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[ConfigError] = []

    def get(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def problem(self, name: str, message: str) -> None:
        self.problems.append(ConfigError(name, message))

    def number(
        self, name: str, default: float, low: float, high: float, integer: bool = False
    ) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.problem(name, f"{name} must be {kind}, got {raw!r}")
            return default
        if not low <= value <= high:
            self.problem(name, f"{name} must be between {low:g} and {high:g}, got {raw}")
            return default
        return value

    def region(self) -> str | None:
        region = self.get("REGION")
        if region is not None and not _REGION_RE.fullmatch(region):
            self.problem("REGION", f"REGION must be a region ID such as cn-north-4, got {region!r}")
            return None
        return region

    def base_url(self, name: str) -> str | None:
        """``name``'s base URL without a trailing slash; None when unset or malformed."""
        raw = self.get(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            self.problem(
                name, f"{name} must be a base URL such as https://host[:port], got {raw!r}"
            )
            return None
        return raw.rstrip("/")

    def endpoints(self) -> dict[str, str]:
        found = {s: self.base_url(f"{s.upper()}_ENDPOINT") for s in SERVICES}
        return {service: url for service, url in found.items() if url is not None}

    def ims_regions(self) -> dict[str, str]:
        """``IMS_ENDPOINT_<REGION>`` overrides, by region ID (copies' target regions)."""
        out: dict[str, str] = {}
        for name in sorted(self.env):
            if not name.startswith(REGION_IMS_PREFIX) or self.get(name) is None:
                continue
            region_id = name.removeprefix(REGION_IMS_PREFIX).lower().replace("_", "-")
            if not _REGION_RE.fullmatch(region_id):
                self.problem(
                    name, f"{name} must name a region, e.g. IMS_ENDPOINT_CN_EAST_3, got {name!r}"
                )
                continue
            url = self.base_url(name)
            if url is not None:
                out[region_id] = url
        return out

    def project(self, context: Any) -> str | None:
        project_id = (
            self.get("PROJECT_ID")
            or _context_value(context, "getProjectID")
            or self.get("RUNTIME_PROJECT_ID")
            or self.get("HUAWEICLOUD_SDK_PROJECT_ID")
        )
        if project_id is not None and not _PROJECT_RE.fullmatch(project_id):
            self.problem("PROJECT_ID", "PROJECT_ID must be letters and digits only")
            return None
        return project_id

    def credentials(self, context: Any) -> Credentials | None:
        """The context's temporary credentials first, else the SDK's AK/SK variables."""
        found = _context_credentials(context)
        if found is not None:
            return found
        ak, sk = self.get("HUAWEICLOUD_SDK_AK"), self.get("HUAWEICLOUD_SDK_SK")
        if ak and sk:
            return Credentials(ak, sk, self.get("HUAWEICLOUD_SDK_SECURITY_TOKEN"))
        if ak or sk:
            missing = "HUAWEICLOUD_SDK_SK" if ak else "HUAWEICLOUD_SDK_AK"
            self.problem(missing, f"{missing} is missing: set both AK and SK")
        return None

    def secrets(self, name: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in (self.get(name) or "").split(",") if s.strip())

    def log_level(self) -> str:
        level = (self.get("LOG_LEVEL") or "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            self.problem(
                "LOG_LEVEL", f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}"
            )
            return "INFO"
        return level
