"""One small error tree, mapped once (GUIDE practice 5). ``TABLE`` gives each class the
outcome of a volume it ends (``rejected``: retrying will not help; ``failed``: a transient
fault outlasted the retries, or the work could not go on) and the HTTP status with which it
ends an API Gateway request; a test checks that every class is in it. ``results.event_type``
turns an outcome into the result event's type."""

from __future__ import annotations

from typing import Literal

ErrorOutcome = Literal["rejected", "failed"]


class ExportError(Exception):
    """Root of the function's errors: a code, a plain message and, where known, more detail."""

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

    @property
    def outcome(self) -> ErrorOutcome:
        """The outcome of a volume this error ends (``TABLE``)."""
        return entry(type(self))[0]

    @property
    def http_status_at_edge(self) -> int:
        """The HTTP status with which this error ends an API Gateway request (``TABLE``)."""
        return entry(type(self))[1]

    def with_message(self, message: str) -> ExportError:
        """The same error (class, code and detail) saying ``message``."""
        copy = copy_error(self)
        copy.message = message
        copy.args = (message,)
        return copy

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


class PayloadTooLarge(InvalidInput):
    """A request body over the size the function reads (API Gateway: 413)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, "PayloadTooLarge")


class SignatureError(ExportError):
    """A request's signature is missing, wrong or stale, or no secret is configured."""

    def __init__(self, reason: str) -> None:
        super().__init__("InvalidSignature", reason)
        self.reason = reason


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
        self.retry_after: float | None = None

    @property
    def outcome(self) -> ErrorOutcome:
        """``failed`` for what a retry could have cured (429, 5xx), else ``rejected``."""
        return "failed" if is_transient_status(self.http_status or 0) else "rejected"


class TransportError(ExportError):
    """No answer from the API: connection refused or reset, or a timeout.

    ``maybe_sent`` tells whether the request may have reached the server (an ambiguous
    failure): then a non-idempotent call must be checked before it is sent again.
    """

    def __init__(self, code: str, message: str, *, maybe_sent: bool) -> None:
        super().__init__(code, message)
        self.maybe_sent = maybe_sent


class BudgetExhausted(ExportError):
    """The invocation's time would not cover another attempt."""

    def __init__(self, message: str, last: ExportError | None = None) -> None:
        code = last.code if last is not None else "TimeBudgetExceeded"
        super().__init__(code, message, http_status=last.http_status if last else None)


class InternalError(ExportError):
    """A bug met while working on one item: it costs that item, never the invocation."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__("InternalError", f"unexpected {type(exc).__name__}")


class HandOffFailed(ExportError):
    """Work the budget did not cover could not be handed to an asynchronous invocation
    (``ContinuationFailed``), or the chain reached its hop limit (``HopLimitReached``)."""


# error class -> (the outcome of a volume it ends, the HTTP status when it ends an APIG request)
TABLE: dict[type[ExportError], tuple[ErrorOutcome, int]] = {
    ExportError: ("rejected", 400),
    InvalidInput: ("rejected", 400),
    PayloadTooLarge: ("rejected", 413),
    SignatureError: ("rejected", 401),
    ConfigError: ("rejected", 500),
    ApiError: ("rejected", 502),  # the outcome follows the status: ApiError.outcome
    TransportError: ("failed", 502),
    BudgetExhausted: ("failed", 504),
    InternalError: ("failed", 500),
    HandOffFailed: ("failed", 500),
}


def entry(cls: type[ExportError]) -> tuple[ErrorOutcome, int]:
    """``TABLE``'s row for ``cls``: its own, else its nearest listed base's."""
    for base in cls.__mro__:
        if base in TABLE:
            return TABLE[base]
    raise KeyError(cls)


def copy_error(exc: ExportError) -> ExportError:
    """A shallow copy of ``exc``: same class and fields (not through ``__init__``, whose
    arguments differ per class)."""
    twin = type(exc).__new__(type(exc))
    twin.__dict__.update(exc.__dict__)
    twin.args = exc.args
    return twin


def is_transient_status(status: int) -> bool:
    """429 and 5xx are worth retrying; other statuses are final."""
    return status == 429 or status >= 500
