"""The one way the function runs work on threads: each thread starts from a copy of the
caller's context variables, so structlog's bound keys (request ID, trigger, correlation ID)
follow the work; the client's shared limiter bounds the requests themselves."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(fn: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """``fn`` over ``items``, results in order, at most ``max_workers`` at a time (in the
    calling thread when one worker is enough)."""
    if len(items) <= 1 or max_workers <= 1:
        return [fn(i) for i in items]
    base = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(lambda i: base.copy().run(fn, i), items))


def run_workers(work: Callable[[], None], workers: int) -> None:
    """Run ``work`` on ``workers`` threads at once (each takes from a shared queue) and wait
    for all of them; an exception in any worker is raised here."""
    if workers <= 1:
        work()
        return
    base = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(base.copy().run, work) for _ in range(workers)]:
            future.result()
