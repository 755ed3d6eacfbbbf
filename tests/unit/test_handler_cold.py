"""The cold path of ``handler.handler``: the first import runs without the cyclic collector."""

from __future__ import annotations

import gc
import sys
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
def test_import_app_restores_the_collector(
    restore_gc: None, enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the cold import the collector is as it was, and the imported objects are frozen."""
    monkeypatch.delitem(sys.modules, "function.app", raising=False)  # as in a fresh process
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()
    handler._import_app()
    assert gc.isenabled() is enabled
    assert gc.get_freeze_count() > 0
    assert "function.app" in sys.modules


def test_import_app_does_nothing_once_imported(restore_gc: None) -> None:
    """With the function imported already, nothing is paused or frozen."""
    import function.app  # noqa: F401

    gc.unfreeze()
    gc.enable()
    handler._import_app()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


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
