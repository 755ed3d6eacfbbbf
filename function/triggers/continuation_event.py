"""The continuation event's models: one pydantic model per part builds and parses it
(``ContinuationJob``, the envelope; ``OrderEvent``; ``WaitEvent``). The envelope never fails
(a malformed value reads as its default); orders and waits are parsed one by one, so each
broken one is its own rejection, naming its field. Imported when a continuation is built or
parsed, not when events are routed (``function.triggers.continuation``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    ValidationInfo,
    model_validator,
)

from function.errors import InvalidInput
from function.model import ACTION_KEY, UploadOptions, is_uuid, parse_export
from function.runtime import Runtime
from function.tagbudget import COPY_ROOM, MAX_KEY_CHARS, copyable
from function.times import iso_z, parse_iso, parse_time
from function.triggers import CONTINUATION_KEY
from function.triggers.chat_job import slack_url
from function.work import ExportOrder, Exports, PlanRequest, Rejection, correlation_id

KEY = CONTINUATION_KEY
MAX_TEMPLATE = 512
PROBE_VOLUME = "00000000-0000-4000-8000-000000000000"  # validates a wait's options only
TRIGGERS = ("direct", "timer", "webhook", "chat", "cts")
HEAD = ("hop", "trigger", "correlation_id", "response_url")  # the envelope's own keys


def _opt_str(value: object) -> str | None:
    return value[:128] if isinstance(value, str) and value else None


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _where(info: ValidationInfo) -> str:
    where = (info.context or {}).get("where")
    return where if isinstance(where, str) else KEY


# -- an order -------------------------------------------------------------------------------


def _run_time(value: object) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) and len(value) <= 64 else None


def _image_tags(value: object) -> dict[str, str]:
    """Copied tags that are still copyable; none when there are more than fit."""
    tags = {
        k: v
        for k, v in (value.items() if isinstance(value, Mapping) else ())
        if isinstance(k, str) and isinstance(v, str) and copyable(k, v)
    }
    return tags if len(tags) <= COPY_ROOM else {}


def _tags_dropped(value: object) -> tuple[str, ...]:
    return tuple(
        d[: MAX_KEY_CHARS * 2]
        for d in (value if isinstance(value, list) else [])
        if isinstance(d, str)
    )[:10]


class OrderEvent(BaseModel):
    """One order of the event. ``volume_id`` and ``body`` are validated as a direct export
    (InvalidInput naming the field); the rest is read leniently (malformed: left out, never
    fatal, since the export itself is what the order is for). The policy fields,
    ``attempts`` and ``ambiguous`` are written only when set, so a fresh order has the
    shape earlier versions wrote, and one without them (from an earlier version) reads as
    fresh."""

    model_config = ConfigDict(defer_build=True)

    volume_id: str
    upload: SkipValidation[UploadOptions]
    policy: Annotated[str | None, BeforeValidator(_opt_str)] = None
    server_id: Annotated[str | None, BeforeValidator(_opt_str)] = None  # carried, not read
    dry_run: Annotated[bool, BeforeValidator(lambda v: v is True)] = False
    keep: Annotated[int | None, BeforeValidator(_positive)] = None  # carried, not read
    run_time: Annotated[datetime | None, BeforeValidator(_run_time)] = None
    image_tags: Annotated[dict[str, str], BeforeValidator(_image_tags)] = Field(
        default_factory=dict
    )
    tags_dropped: Annotated[tuple[str, ...], BeforeValidator(_tags_dropped)] = ()
    attempts: Annotated[int, BeforeValidator(lambda v: _positive(v) or 0)] = 0
    ambiguous: Annotated[bool, BeforeValidator(lambda v: v is True)] = False

    @model_validator(mode="before")
    @classmethod
    def _export(cls, raw: Any, info: ValidationInfo) -> dict[str, Any]:
        where = _where(info)
        if not isinstance(raw, Mapping):
            raise InvalidInput(where, f"{where} must be an object")
        body = raw.get("body")
        request, upload = parse_export(
            {"volume_id": raw.get("volume_id"), **(body if isinstance(body, Mapping) else {})},
            where,
        )
        rest = {k: v for k, v in raw.items() if k not in ("volume_id", "body", "upload")}
        return {**rest, "volume_id": request.volume_id, "upload": upload}

    @classmethod
    def of(cls, order: ExportOrder) -> OrderEvent:
        return cls.model_construct(
            volume_id=order.volume_id,
            upload=order.upload,
            policy=order.policy,
            server_id=order.server_id,
            dry_run=order.dry_run,
            keep=order.keep,
            run_time=order.run_time,
            image_tags=dict(order.image_tags),
            tags_dropped=order.tags_dropped,
            attempts=order.attempts,
            ambiguous=order.ambiguous,
        )

    def event(self) -> dict[str, Any]:
        from function.cloud.evs import upload_body

        out: dict[str, Any] = {
            "volume_id": self.volume_id,
            "body": upload_body(self.upload),
            "policy": self.policy,
            "server_id": self.server_id,
            "dry_run": self.dry_run,
            "keep": self.keep,
        }
        if self.run_time is not None:
            out["run_time"] = self.run_time.isoformat()
        if self.image_tags:
            out["image_tags"] = dict(self.image_tags)
        if self.tags_dropped:
            out["tags_dropped"] = list(self.tags_dropped)
        if self.attempts:
            out["attempts"] = self.attempts
        if self.ambiguous:
            out["ambiguous"] = True
        return out

    def order(self) -> ExportOrder:
        return ExportOrder(
            volume_id=self.volume_id,
            upload=self.upload,
            policy=self.policy,
            server_id=self.server_id,
            dry_run=self.dry_run,
            keep=self.keep,
            attempts=self.attempts,
            ambiguous=self.ambiguous,
            run_time=self.run_time,
            image_tags=self.image_tags,
            tags_dropped=self.tags_dropped,
        )


# -- a wait for stopping servers ------------------------------------------------------------


def _server_ids(value: object, info: ValidationInfo) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(is_uuid(v) for v in value):
        field = f"{_where(info)}.server_ids"
        raise InvalidInput(field, "server_ids must be a list of server UUIDs")
    return tuple(str(v) for v in value)


def _template(value: object, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEMPLATE:
        raise InvalidInput(f"{_where(info)}.template", "template must be a non-empty string")
    return value


def _options(value: object, info: ValidationInfo) -> dict[str, Any]:
    where = f"{_where(info)}.options"
    if not isinstance(value, Mapping):
        raise InvalidInput(where, "options must be an object")
    probe = {ACTION_KEY: {"image_name": "probe", **value}}
    parse_export({"volume_id": PROBE_VOLUME, **probe}, where)
    return dict(value)


def _server_tag(value: object, info: ValidationInfo) -> tuple[str, str] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(t, str) for t in value)):
        raise InvalidInput(f"{_where(info)}.server_tag", "server_tag must be [key, value] or null")
    return (value[0], value[1])


def _time(name: str) -> Callable[[object, ValidationInfo], datetime | None]:
    def read(value: object, info: ValidationInfo) -> datetime | None:
        return parse_time(value, f"{_where(info)}.{name}")

    return read


class WaitEvent(BaseModel):
    """A wait for stopping servers (a CTS plan with its deadline). Every field is checked,
    in declaration order, the first broken one raising InvalidInput that names it."""

    model_config = ConfigDict(defer_build=True)

    server_ids: Annotated[tuple[str, ...], BeforeValidator(_server_ids)] = Field(
        default=None, validate_default=True
    )
    template: Annotated[str, BeforeValidator(_template)] = Field(
        default=None, validate_default=True
    )
    options: Annotated[SkipValidation[dict[str, Any]], BeforeValidator(_options)] = Field(
        default=None, validate_default=True
    )
    server_tag: Annotated[tuple[str, str] | None, BeforeValidator(_server_tag)] = None
    time: Annotated[datetime | None, BeforeValidator(_time("time"))] = None
    stop_deadline: Annotated[datetime | None, BeforeValidator(_time("stop_deadline"))] = None
    policy: Annotated[str | None, BeforeValidator(_opt_str)] = None

    @model_validator(mode="before")
    @classmethod
    def _object(cls, raw: Any, info: ValidationInfo) -> Any:
        where = _where(info)
        if not isinstance(raw, Mapping):
            raise InvalidInput(where, f"{where} must be an object")
        return raw

    @model_validator(mode="after")
    def _required(self, info: ValidationInfo) -> WaitEvent:
        if self.time is None or self.stop_deadline is None:
            field = f"{_where(info)}.stop_deadline"
            raise InvalidInput(field, "time and stop_deadline are required")
        return self

    @classmethod
    def of(cls, plan: PlanRequest) -> WaitEvent:
        return cls.model_construct(
            server_ids=plan.server_ids,
            template=plan.template,
            options=dict(plan.options),
            server_tag=plan.server_tag,
            time=plan.time,
            stop_deadline=plan.stop_deadline,
            policy=plan.policy,
        )

    def event(self) -> dict[str, Any]:
        assert self.time is not None and self.stop_deadline is not None
        return {
            "policy": self.policy,
            "template": self.template,
            "time": iso_z(self.time),
            "options": dict(self.options),
            "server_ids": list(self.server_ids),
            "server_tag": list(self.server_tag) if self.server_tag else None,
            "stop_deadline": iso_z(self.stop_deadline),
        }

    def plan(self) -> PlanRequest:
        assert self.time is not None
        return PlanRequest(
            policy=self.policy,
            template=self.template,
            time=self.time,
            options=self.options,
            server_ids=self.server_ids,
            server_tag=self.server_tag,
            stop_deadline=self.stop_deadline,
        )


# -- the envelope ---------------------------------------------------------------------------


class ContinuationJob(BaseModel):
    """The event ``{"evs_export_continuation": {...}}``. Parsing reads only the envelope
    (``HEAD``, never failing); ``parse`` reads the orders and waits one by one."""

    model_config = ConfigDict(defer_build=True)

    hop: Annotated[int, BeforeValidator(lambda v: _positive(v) or 1)] = 1
    trigger: Annotated[str, BeforeValidator(lambda v: v if v in TRIGGERS else "direct")] = "direct"
    correlation_id: Annotated[
        str | None, BeforeValidator(lambda v: v if isinstance(v, str) and v else None)
    ] = None
    response_url: Annotated[str | None, BeforeValidator(slack_url)] = None
    orders: list[OrderEvent] = Field(default_factory=list)
    waits: list[WaitEvent] = Field(default_factory=list)

    def event(self) -> dict[str, Any]:
        job: dict[str, Any] = {
            "hop": self.hop,
            "trigger": self.trigger,
            "correlation_id": self.correlation_id,
            "response_url": self.response_url,
            "orders": [o.event() for o in self.orders],
        }
        if self.waits:
            job["waits"] = [w.event() for w in self.waits]
        return {KEY: job}


def build_event(
    work: Exports, orders: Sequence[ExportOrder], waits: Sequence[PlanRequest] = ()
) -> dict[str, Any]:
    """The event that carries ``orders`` (and ``waits``) to the next invocation."""
    job = ContinuationJob.model_construct(
        hop=work.hop + 1,
        trigger=work.trigger,
        correlation_id=work.correlation_id,
        response_url=work.response_url,
        orders=[OrderEvent.of(o) for o in orders],
        waits=[WaitEvent.of(p) for p in waits],
    )
    return job.event()


def parse_event(event: Mapping[str, Any], runtime: Runtime) -> Exports:
    raw = event.get(KEY)
    job: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    head = ContinuationJob.model_validate({k: job[k] for k in HEAD if k in job})
    items: list[ExportOrder | Rejection] = []
    plans: list[PlanRequest] = []

    def work() -> Exports:
        return Exports(
            head.trigger,
            correlation_id(head.correlation_id, lambda: runtime.request_id),
            items=tuple(items),
            plans=tuple(plans),
            response_url=head.response_url,
            hop=head.hop,
        )

    orders = job.get("orders")
    waits = job.get("waits")
    if isinstance(waits, list) and waits:
        for i, raw_wait in enumerate(waits):
            try:
                wait = WaitEvent.model_validate(raw_wait, context={"where": f"{KEY}.waits[{i}]"})
            except InvalidInput as exc:
                items.append(Rejection(None, exc))
            else:
                plans.append(wait.plan())
        if orders == []:
            return work()
    if not isinstance(orders, list) or not orders:
        items.append(
            Rejection(None, InvalidInput(f"{KEY}.orders", "orders must be a non-empty list"))
        )
        return work()
    for i, raw_order in enumerate(orders):
        try:
            order = OrderEvent.model_validate(raw_order, context={"where": f"{KEY}.orders[{i}]"})
        except InvalidInput as exc:
            volume = raw_order.get("volume_id") if isinstance(raw_order, Mapping) else None
            items.append(Rejection(volume if is_uuid(volume) else None, exc))
        else:
            items.append(order.order())
    return work()
