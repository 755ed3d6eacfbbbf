"""One small error tree. Each error names its outcome (``rejected``: retrying will not help,
``failed``: a transient fault outlasted the retries); ``results.event_type`` turns an outcome
into the result event's type, in one place."""

from __future__ import annotations

from typing import Literal

ErrorOutcome = Literal["rejected", "failed"]


class ExportError(Exception):
    """Root of the function's errors: a code, a plain message and, where known, more detail."""

    outcome: ErrorOutcome = "rejected"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.http_status = http_status
        self.request_id = request_id

    def as_dict(self) -> dict[str, object]:
        """The ``data.error`` object of a result event: only the keys that are known."""
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.http_status is not None:
            out["http_status"] = self.http_status
        if self.field is not None:
            out["field"] = self.field
        return out


class InvalidInput(ExportError):
    """The caller's input breaks a rule; nothing was sent."""

    def __init__(self, field: str, message: str, code: str = "InvalidInput") -> None:
        super().__init__(code, message, field=field)


class ConfigError(ExportError):
    """The function's configuration is missing or malformed; names the variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__("ConfigError", message, field=variable)


class ApiError(ExportError):
    """The API answered with an error status; ``outcome`` says whether a retry could help."""

    def __init__(
        self, http_status: int, code: str, message: str, request_id: str | None = None
    ) -> None:
        super().__init__(code, message, http_status=http_status, request_id=request_id)
        self.outcome = "failed" if is_transient_status(http_status) else "rejected"
        self.retry_after: float | None = None


class TransportError(ExportError):
    """No answer from the API: connection refused or reset, or a timeout.

    ``maybe_sent`` tells whether the request may have reached the server (an ambiguous
    failure): then a non-idempotent call must be checked before it is sent again.
    """

    outcome: ErrorOutcome = "failed"

    def __init__(self, code: str, message: str, *, maybe_sent: bool) -> None:
        super().__init__(code, message)
        self.maybe_sent = maybe_sent


class BudgetExhausted(ExportError):
    """The invocation's time would not cover another attempt."""

    outcome: ErrorOutcome = "failed"

    def __init__(self, message: str, last: ExportError | None = None) -> None:
        code = last.code if last is not None else "TimeBudgetExceeded"
        super().__init__(code, message, http_status=last.http_status if last else None)


def is_transient_status(status: int) -> bool:
    """429 and 5xx are worth retrying; other statuses are final."""
    return status == 429 or status >= 500
