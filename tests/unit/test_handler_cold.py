"""The cold path of ``handler.handler``: the first import runs without the cyclic collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import handler


@pytest.fixture
def restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled", [True, False], ids=["gc-on", "gc-off"])
def test_import_app_restores_the_collector(restore_gc: None, enabled: bool) -> None:
    """After the cold import the collector is as it was, and the imported objects are frozen."""
    if enabled:
        gc.enable()
    else:
        gc.disable()
    handler._import_app()
    assert gc.isenabled() is enabled
    assert gc.get_freeze_count() > 0


def test_cold_call_returns_a_result_and_leaves_gc_on(
    restore_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold call still answers (here: an unknown event, rejected) and re-enables the collector."""
    gc.enable()
    monkeypatch.setattr(handler, "_COLD", [True])
    result = handler.handler(None, None)
    assert result["summary"]["rejected"] == 1
    assert gc.isenabled()
    assert handler._COLD == [False]
