"""Settings from a dict environment and a fake FunctionGraph context (function/config.py)."""

from __future__ import annotations

import pytest

from function.config import Credentials, Settings
from function.errors import ConfigError

REGION = {"REGION": "cn-north-4"}
ENV_KEYS = {"HUAWEICLOUD_SDK_AK": "ENVAK", "HUAWEICLOUD_SDK_SK": "ENVSK-secret-value"}


class FakeContext:
    """The FunctionGraph context getters the settings read."""

    def __init__(
        self,
        ak: str = "CTXAK",
        sk: str = "CTXSK-secret-value",
        token: str = "CTX-TOKEN-value",
        project: str | None = "ctxproject",
    ) -> None:
        self.ak, self.sk, self.token, self.project = ak, sk, token, project

    def getSecurityAccessKey(self) -> str:
        return self.ak

    def getSecuritySecretKey(self) -> str:
        return self.sk

    def getSecurityToken(self) -> str:
        return self.token

    def getProjectID(self) -> str | None:
        return self.project


class RaisingContext:
    """A context whose every getter raises."""

    def getSecurityAccessKey(self) -> str:
        raise RuntimeError("no agency")

    def getSecuritySecretKey(self) -> str:
        raise RuntimeError("no agency")

    def getSecurityToken(self) -> str:
        raise RuntimeError("no agency")

    def getProjectID(self) -> str:
        raise AttributeError("not on this runtime")


def problem_fields(settings: Settings) -> list[str | None]:
    return [p.field for p in settings.problems]


def test_defaults_from_empty_env() -> None:
    """An empty environment gives the documented defaults and no problems."""
    s = Settings.from_env({})
    assert s.region is None
    assert s.project_id is None
    assert s.credentials is None
    assert dict(s.endpoints) == {}
    assert s.max_concurrency == 8
    assert s.max_requests_per_second == 10.0
    assert s.log_level == "INFO"
    assert s.webhook_secrets == ()
    assert s.chat_allowed_users == frozenset()
    assert s.chat_allowed_channels is None
    assert s.problems == ()


@pytest.mark.parametrize("service", ["evs", "ims", "ecs", "smn", "functiongraph"])
def test_region_builds_default_endpoints(service: str) -> None:
    """REGION builds https://{service}.{REGION}.myhuaweicloud.com."""
    s = Settings.from_env(REGION)
    assert s.endpoint(service) == f"https://{service}.cn-north-4.myhuaweicloud.com"


def test_evs_endpoint_cn_north_4() -> None:
    """The EVS endpoint of cn-north-4 is the documented one."""
    assert Settings.from_env(REGION).endpoint("evs") == "https://evs.cn-north-4.myhuaweicloud.com"


def test_eu_west_101_ims_uses_eu_domain() -> None:
    """IMS in eu-west-101 lives under .myhuaweicloud.eu; EVS there does not."""
    s = Settings.from_env({"REGION": "eu-west-101"})
    assert s.endpoint("ims") == "https://ims.eu-west-101.myhuaweicloud.eu"
    assert s.endpoint("evs") == "https://evs.eu-west-101.myhuaweicloud.com"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://evs.eu-de.otc.t-systems.com", "https://evs.eu-de.otc.t-systems.com"),
        (" https://proxy.example.com/evs/ ", "https://proxy.example.com/evs"),
    ],
)
def test_endpoint_override(raw: str, expected: str) -> None:
    """An *_ENDPOINT override wins over the region default (trailing slash dropped)."""
    s = Settings.from_env({**REGION, "EVS_ENDPOINT": raw})
    assert s.endpoint("evs") == expected
    assert s.endpoint("ims") == "https://ims.cn-north-4.myhuaweicloud.com"
    assert s.problems == ()


def test_endpoint_override_without_region() -> None:
    """An overridden service works without REGION."""
    s = Settings.from_env({"IMS_ENDPOINT": "http://127.0.0.1:9000"})
    assert s.endpoint("ims") == "http://127.0.0.1:9000"


@pytest.mark.parametrize("service", ["EVS", "IMS", "ECS", "SMN", "FUNCTIONGRAPH"])
@pytest.mark.parametrize(
    "raw", ["evs.example.com", "ftp://evs.example.com", "https://", "https://h/?a=1", "127.0.0.1"]
)
def test_malformed_endpoint_is_a_problem(service: str, raw: str) -> None:
    """A malformed endpoint becomes a problem naming its variable, and is not used."""
    name = f"{service}_ENDPOINT"
    s = Settings.from_env({**REGION, name: raw})
    assert problem_fields(s) == [name]
    assert name in s.problems[0].message
    assert raw in s.problems[0].message
    assert s.endpoint(service.lower()).startswith("https://")


@pytest.mark.parametrize("raw", ["abc", "1.5", "", " "])
def test_max_concurrency_not_a_number(raw: str) -> None:
    """MAX_CONCURRENCY that is not a whole number is a problem (blank means default)."""
    s = Settings.from_env({"MAX_CONCURRENCY": raw})
    assert s.max_concurrency == 8
    if raw.strip():
        assert problem_fields(s) == ["MAX_CONCURRENCY"]
        assert "whole number" in s.problems[0].message
    else:
        assert s.problems == ()


@pytest.mark.parametrize("raw", ["0", "-1", "65", "1000"])
def test_max_concurrency_out_of_range(raw: str) -> None:
    """MAX_CONCURRENCY outside 1..64 is a problem naming the variable; the default is kept."""
    s = Settings.from_env({"MAX_CONCURRENCY": raw})
    assert problem_fields(s) == ["MAX_CONCURRENCY"]
    assert "between 1 and 64" in s.problems[0].message
    assert s.max_concurrency == 8


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("64", 64), (" 16 ", 16)])
def test_max_concurrency_in_range(raw: str, value: int) -> None:
    """MAX_CONCURRENCY inside 1..64 is used."""
    s = Settings.from_env({"MAX_CONCURRENCY": raw})
    assert s.max_concurrency == value
    assert s.problems == ()


@pytest.mark.parametrize("raw", ["fast", "0", "nan", "inf", "1001"])
def test_max_requests_per_second_invalid(raw: str) -> None:
    """MAX_REQUESTS_PER_SECOND that is not a number in 0.1..1000 is a problem naming it."""
    s = Settings.from_env({"MAX_REQUESTS_PER_SECOND": raw})
    assert problem_fields(s) == ["MAX_REQUESTS_PER_SECOND"]
    assert s.max_requests_per_second == 10.0


def test_max_requests_per_second_fraction() -> None:
    """MAX_REQUESTS_PER_SECOND accepts fractions."""
    assert Settings.from_env({"MAX_REQUESTS_PER_SECOND": "2.5"}).max_requests_per_second == 2.5


@pytest.mark.parametrize("raw", ["verbose", "TRACE", "5"])
def test_bad_log_level_is_a_problem(raw: str) -> None:
    """An unknown LOG_LEVEL is a problem naming LOG_LEVEL; INFO is used."""
    s = Settings.from_env({"LOG_LEVEL": raw})
    assert problem_fields(s) == ["LOG_LEVEL"]
    assert s.log_level == "INFO"


def test_log_level_case_insensitive() -> None:
    """LOG_LEVEL is read case-insensitively."""
    assert Settings.from_env({"LOG_LEVEL": "debug"}).log_level == "DEBUG"


@pytest.mark.parametrize("raw", ["CN-NORTH-4", "north", "cn_north_4", "cn-north-4/x"])
def test_malformed_region_is_a_problem(raw: str) -> None:
    """A REGION that is not a region ID is a problem naming REGION."""
    s = Settings.from_env({"REGION": raw})
    assert problem_fields(s) == ["REGION"]
    assert s.region is None


def test_missing_region_raises_config_error_naming_region() -> None:
    """Asking for an endpoint without REGION or an override raises ConfigError(REGION)."""
    s = Settings.from_env({})
    with pytest.raises(ConfigError) as info:
        s.endpoint("evs")
    assert info.value.field == "REGION"
    assert info.value.code == "ConfigError"
    assert "EVS_ENDPOINT" in info.value.message


def test_several_problems_all_reported() -> None:
    """Every malformed variable is reported, each by name."""
    s = Settings.from_env(
        {"MAX_CONCURRENCY": "abc", "LOG_LEVEL": "loud", "EVS_ENDPOINT": "nope", "REGION": "x"}
    )
    assert sorted(f or "" for f in problem_fields(s)) == [
        "EVS_ENDPOINT",
        "LOG_LEVEL",
        "MAX_CONCURRENCY",
        "REGION",
    ]


# --- credentials -----------------------------------------------------------------------------


def test_credentials_from_env() -> None:
    """HUAWEICLOUD_SDK_AK/SK/SECURITY_TOKEN make the credentials when there is no context."""
    s = Settings.from_env({**ENV_KEYS, "HUAWEICLOUD_SDK_SECURITY_TOKEN": "envtoken"})
    assert s.credentials == Credentials("ENVAK", "ENVSK-secret-value", "envtoken")
    assert s.require_credentials() is s.credentials


def test_context_credentials_preferred_over_env() -> None:
    """The context's temporary AK/SK/token win over the environment's keys."""
    s = Settings.from_env(ENV_KEYS, FakeContext())
    assert s.credentials == Credentials("CTXAK", "CTXSK-secret-value", "CTX-TOKEN-value")


def test_context_without_agency_falls_back_to_env() -> None:
    """A context returning empty keys (no agency) leaves the environment's keys in use."""
    s = Settings.from_env(ENV_KEYS, FakeContext(ak="", sk="", token=""))
    assert s.credentials == Credentials("ENVAK", "ENVSK-secret-value", None)


def test_context_token_empty_means_no_token() -> None:
    """An empty token from the context is no token."""
    s = Settings.from_env({}, FakeContext(token=""))
    assert s.credentials == Credentials("CTXAK", "CTXSK-secret-value", None)


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"HUAWEICLOUD_SDK_AK": "ENVAK"}, "HUAWEICLOUD_SDK_SK"),
        ({"HUAWEICLOUD_SDK_SK": "ENVSK"}, "HUAWEICLOUD_SDK_AK"),
    ],
)
def test_half_of_the_keys_is_a_problem(env: dict[str, str], missing: str) -> None:
    """Only one of AK and SK set is a problem naming the missing one; no credentials."""
    s = Settings.from_env(env)
    assert problem_fields(s) == [missing]
    assert s.credentials is None


def test_no_credentials_require_raises_naming_ak() -> None:
    """require_credentials without any keys raises ConfigError naming HUAWEICLOUD_SDK_AK."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env(REGION).require_credentials()
    assert info.value.field == "HUAWEICLOUD_SDK_AK"


def test_raising_context_tolerated() -> None:
    """A context whose getters raise is treated as absent."""
    s = Settings.from_env({**ENV_KEYS, "RUNTIME_PROJECT_ID": "rtproject"}, RaisingContext())
    assert s.credentials == Credentials("ENVAK", "ENVSK-secret-value", None)
    assert s.project_id == "rtproject"
    assert s.problems == ()


def test_context_without_getters_tolerated() -> None:
    """A context object lacking the getters (older runtimes) is tolerated."""
    s = Settings.from_env({"PROJECT_ID": "p1"}, object())
    assert s.project_id == "p1"
    assert s.credentials is None


# --- project -----------------------------------------------------------------------------------

ALL_PROJECTS = {
    "PROJECT_ID": "envproject",
    "RUNTIME_PROJECT_ID": "rtproject",
    "HUAWEICLOUD_SDK_PROJECT_ID": "sdkproject",
}


def test_project_id_env_first() -> None:
    """PROJECT_ID wins over the context and the runtime variables."""
    assert Settings.from_env(ALL_PROJECTS, FakeContext()).project_id == "envproject"


def test_project_id_context_second() -> None:
    """Without PROJECT_ID, context.getProjectID() wins."""
    env = {k: v for k, v in ALL_PROJECTS.items() if k != "PROJECT_ID"}
    assert Settings.from_env(env, FakeContext()).project_id == "ctxproject"


def test_project_id_runtime_third() -> None:
    """Without PROJECT_ID or a context project, RUNTIME_PROJECT_ID wins."""
    env = {k: v for k, v in ALL_PROJECTS.items() if k != "PROJECT_ID"}
    assert Settings.from_env(env, FakeContext(project=None)).project_id == "rtproject"


def test_project_id_sdk_last() -> None:
    """HUAWEICLOUD_SDK_PROJECT_ID is the last resort."""
    env = {"HUAWEICLOUD_SDK_PROJECT_ID": "sdkproject"}
    assert Settings.from_env(env, FakeContext(project="")).project_id == "sdkproject"


def test_missing_project_raises_naming_project_id() -> None:
    """require_project without any project raises ConfigError naming PROJECT_ID."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({}).require_project()
    assert info.value.field == "PROJECT_ID"


def test_malformed_project_id_is_a_problem() -> None:
    """A project ID with other than letters and digits is a problem naming PROJECT_ID."""
    s = Settings.from_env({"PROJECT_ID": "../etc"})
    assert problem_fields(s) == ["PROJECT_ID"]
    assert s.project_id is None


# --- secrets stay out of repr -----------------------------------------------------------------


def test_repr_hides_secret_key_and_token() -> None:
    """repr and str of settings never show the SK, the token or other secrets."""
    env = {
        **REGION,
        **ENV_KEYS,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": "ENV-TOKEN-value",
        "WEBHOOK_SECRETS": "whsec_aGVsbG8=,whsec_d29ybGQ=",
        "SLACK_SIGNING_SECRET": "slack-signing-value",
        "RESULT_WEBHOOK_SECRET": "whsec_cmVzdWx0",
    }
    for s in (Settings.from_env(env), Settings.from_env(env, FakeContext())):
        text = repr(s) + str(s) + repr(s.credentials)
        for secret in (
            "ENVSK-secret-value",
            "ENV-TOKEN-value",
            "CTXSK-secret-value",
            "CTX-TOKEN-value",
            "whsec_aGVsbG8=",
            "slack-signing-value",
            "whsec_cmVzdWx0",
        ):
            assert secret not in text
    assert "ENVAK" in repr(Settings.from_env(env))


def test_secret_values_lists_every_secret() -> None:
    """secret_values hands the redactor the SK, the token and the signing secrets."""
    env = {
        **ENV_KEYS,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": "ENV-TOKEN-value",
        "WEBHOOK_SECRETS": "whsec_a, whsec_b",
        "SLACK_SIGNING_SECRET": "slack-signing-value",
    }
    assert set(Settings.from_env(env).secret_values()) == {
        "ENVSK-secret-value",
        "ENV-TOKEN-value",
        "whsec_a",
        "whsec_b",
        "slack-signing-value",
    }


def test_chat_lists_split_on_commas() -> None:
    """Comma-separated chat ID lists become sets, blanks dropped."""
    s = Settings.from_env({"CHAT_ALLOWED_USERS": "U1, U2,,", "CHAT_ALLOWED_CHANNELS": "C1"})
    assert s.chat_allowed_users == frozenset({"U1", "U2"})
    assert s.chat_allowed_channels == frozenset({"C1"})
