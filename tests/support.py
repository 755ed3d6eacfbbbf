"""What every test tier shares: the one set of keys the fake cloud and the function are given
(each tier's harness builds on these), and the logging reset."""

from __future__ import annotations

from function import log

AK = "AKINTEGRATION0001"
SK = "SKintegrationSecretValue0001"
WRONG_SK = "SKintegrationWrongValue0002"
TOKEN = "SecurityTokenIntegration0001xyz"
PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "cn-north-4"


def reset_logging() -> None:
    """Logging as new (tests share one process, an invocation changes it): ``log.reset``."""
    log.reset()
