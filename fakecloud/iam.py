"""IAM enforcement: custom policies and the 403 per service (each route names its action).

Off by default. With a policy (`FakeCloud(iam_policy=doc)`, `cloud.set_iam_policy(doc)`,
`POST /_fake/iam`, `python -m fakecloud --iam-policy FILE`) every signed request whose action
the policy does not allow is answered 403 "Policy doesn't allow <action> to be performed."
(PLATFORM.md 10.6) in the service's own error body, after the signature check.

A policy is an IAM custom policy document (PLATFORM.md 10.6):
`{"Version": "1.1", "Statement": [{"Effect": "Allow"|"Deny", "Action": ["evs:volumes:get",
...]}]}`. Actions are `service:resource:action`; a `*` matches within one segment
(`evs:*:*`, `ims:images:get*`). An explicit Deny wins over any Allow, and what no statement
allows is denied. Whether IAM compares actions case-insensitively is [U]; the fake takes the
stricter reading each way: an Allow must match the case exactly, a Deny matches in any case.
Keys the fake cannot evaluate (`Resource`, `Condition`, ...) are refused rather than
ignored, so a test never passes on a rule the fake did not apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fakecloud.base import Handler
from fakecloud.services import REGISTRY, SERVICES

# Each route's handler -> the IAM action it needs, read from the route tables (the one place
# each action is written, beside its route and source). tests/contract/test_iam.py proves
# every route has one of PLATFORM.md 10.6's actions and no handler serves two routes.
ACTIONS: dict[Handler, str] = {r.handler: r.action for routes in SERVICES.values() for r in routes}

_ACTION = re.compile(r"^[A-Za-z0-9*]+:[A-Za-z0-9*]+:[A-Za-z0-9*]+$")
_STATEMENT_KEYS = {"Effect", "Action"}


def denied_message(action: str) -> str:
    """The 403 message, verbatim from PLATFORM.md 10.6."""
    return f"Policy doesn't allow {action} to be performed."


def denied_body(service: str, action: str, request_id: str) -> dict[str, Any]:
    """The 403 body in `service`'s own error format (each service's `errors.denied`)."""
    return REGISTRY[service].denied(denied_message(action), request_id)


def _pattern(action: str, flags: int = 0) -> re.Pattern[str]:
    """An action with `*` wildcards as a regex; a `*` matches within one segment only."""
    body = "[^:]*".join(re.escape(part) for part in action.split("*"))
    return re.compile(f"^{body}$", flags)


class Policy:
    """A validated IAM custom policy; `allows(action)` evaluates it (Deny wins, default deny)."""

    def __init__(self, document: Any) -> None:
        self.document = validate(document)
        self._rules = [
            (
                str(st["Effect"]),
                [_pattern(a, re.IGNORECASE if st["Effect"] == "Deny" else 0) for a in st["Action"]],
            )
            for st in self.document["Statement"]
        ]

    def allows(self, action: str) -> bool:
        """Whether `action` is allowed: some Allow matches and no Deny does."""
        allowed = False
        for effect, patterns in self._rules:
            if any(p.match(action) for p in patterns):
                if effect == "Deny":
                    return False
                allowed = True
        return allowed


def validate(document: Any) -> dict[str, Any]:
    """The document if it is a custom policy the fake can evaluate, else ValueError."""
    if not isinstance(document, Mapping):
        raise ValueError("an IAM policy is a JSON object")
    if set(document) != {"Version", "Statement"}:
        raise ValueError('an IAM policy has exactly the keys "Version" and "Statement"')
    if document["Version"] != "1.1":
        raise ValueError('the fake evaluates custom policies of "Version": "1.1" only')
    statements = document["Statement"]
    if not isinstance(statements, list) or not statements:
        raise ValueError('"Statement" must be a non-empty list')
    for st in statements:
        if not isinstance(st, Mapping) or set(st) != _STATEMENT_KEYS:
            raise ValueError(
                f"each statement has exactly the keys {sorted(_STATEMENT_KEYS)} (got {st!r});"
                " the fake does not evaluate Resource or Condition"
            )
        if st["Effect"] not in ("Allow", "Deny"):
            raise ValueError(f'"Effect" must be "Allow" or "Deny", not {st["Effect"]!r}')
        actions = st["Action"]
        if not isinstance(actions, list) or not actions:
            raise ValueError('"Action" must be a non-empty list of strings')
        for action in actions:
            if not isinstance(action, str) or not _ACTION.match(action):
                raise ValueError(f"invalid action {action!r}: expected service:resource:action")
    return {"Version": "1.1", "Statement": [dict(st) for st in statements]}
