"""Settings read once per invocation from the environment and the FunctionGraph context.

Nothing here raises: malformed values are collected as ``problems`` and missing ones are
reported by the ``require_*`` accessors, each naming the variable to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
        problems: list[ConfigError] = []

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float, low: float, high: float, integer: bool) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw) if integer else float(raw)
            except ValueError:
                kind = "a whole number" if integer else "a number"
                problems.append(ConfigError(name, f"{name} must be {kind}, got {raw!r}"))
                return default
            if not low <= value <= high:
                problems.append(
                    ConfigError(name, f"{name} must be between {low:g} and {high:g}, got {raw}")
                )
                return default
            return value

        region = get("REGION")
        if region is not None and not _REGION_RE.fullmatch(region):
            problems.append(
                ConfigError(
                    "REGION", f"REGION must be a region ID such as cn-north-4, got {region!r}"
                )
            )
            region = None

        endpoints: dict[str, str] = {}
        for service in SERVICES:
            name = f"{service.upper()}_ENDPOINT"
            raw = get(name)
            if raw is None:
                continue
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                problems.append(
                    ConfigError(
                        name, f"{name} must be a base URL such as https://host[:port], got {raw!r}"
                    )
                )
                continue
            endpoints[service] = raw.rstrip("/")

        ims_regions: dict[str, str] = {}
        for name in sorted(env):
            if not name.startswith(REGION_IMS_PREFIX) or get(name) is None:
                continue
            raw = get(name) or ""
            parts = urlsplit(raw)
            region_id = name.removeprefix(REGION_IMS_PREFIX).lower().replace("_", "-")
            if not _REGION_RE.fullmatch(region_id):
                problems.append(
                    ConfigError(
                        name,
                        f"{name} must name a region, e.g. IMS_ENDPOINT_CN_EAST_3, got {name!r}",
                    )
                )
            elif parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                problems.append(
                    ConfigError(
                        name, f"{name} must be a base URL such as https://host[:port], got {raw!r}"
                    )
                )
            else:
                ims_regions[region_id] = raw.rstrip("/")

        project_id = (
            get("PROJECT_ID")
            or _context_value(context, "getProjectID")
            or get("RUNTIME_PROJECT_ID")
            or get("HUAWEICLOUD_SDK_PROJECT_ID")
        )
        if project_id is not None and not _PROJECT_RE.fullmatch(project_id):
            problems.append(ConfigError("PROJECT_ID", "PROJECT_ID must be letters and digits only"))
            project_id = None

        credentials = _context_credentials(context)
        if credentials is None:
            ak, sk = get("HUAWEICLOUD_SDK_AK"), get("HUAWEICLOUD_SDK_SK")
            if ak and sk:
                credentials = Credentials(ak, sk, get("HUAWEICLOUD_SDK_SECURITY_TOKEN"))
            elif ak or sk:
                missing = "HUAWEICLOUD_SDK_SK" if ak else "HUAWEICLOUD_SDK_AK"
                problems.append(ConfigError(missing, f"{missing} is missing: set both AK and SK"))

        webhook_secrets = tuple(
            s.strip() for s in (get("WEBHOOK_SECRETS") or "").split(",") if s.strip()
        )
        channels = _id_set(get("CHAT_ALLOWED_CHANNELS"))
        level = (get("LOG_LEVEL") or "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            problems.append(
                ConfigError(
                    "LOG_LEVEL", f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}"
                )
            )
            level = "INFO"

        return cls(
            region=region,
            project_id=project_id,
            endpoints=endpoints,
            credentials=credentials,
            webhook_secrets=webhook_secrets,
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            chat_allowed_users=_id_set(get("CHAT_ALLOWED_USERS")) or frozenset(),
            chat_allowed_channels=channels,
            result_webhook_url=get("RESULT_WEBHOOK_URL"),
            result_webhook_secret=get("RESULT_WEBHOOK_SECRET"),
            result_smn_topic_urn=get("RESULT_SMN_TOPIC_URN"),
            function_urn=get("FUNCTION_URN"),
            max_concurrency=int(number("MAX_CONCURRENCY", 8, 1, 64, True)),
            max_requests_per_second=number("MAX_REQUESTS_PER_SECOND", 10.0, 0.1, 1000.0, False),
            stop_wait_seconds=int(number("CTS_STOP_WAIT_SECONDS", 600, 0, 3600, True)),
            log_level=level,
            problems=tuple(problems),
            ims_region_endpoints=ims_regions,
        )

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
