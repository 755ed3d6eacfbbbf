"""The suite's own layout: every test is in a tier folder, and each tier has its marker and
its make target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import TESTS, TIERS, tier_of

ROOT = TESTS.parent


@pytest.mark.parametrize(
    ("path", "tier"),
    [
        (TESTS / "unit" / "test_names.py", "unit"),
        (TESTS / "functional" / "test_triggers.py", "functional"),
        (TESTS / "contract" / "test_auth.py", "contract"),
        (TESTS / "e2e" / "test_package.py", "e2e"),
        (TESTS / "resilience" / "test_storm.py", "resilience"),
        (TESTS / "integration" / "test_new.py", None),
        (TESTS / "test_loose.py", None),
        (ROOT / "bench" / "test_x.py", None),
    ],
)
def test_tier_of_vectors(path: Path, tier: str | None) -> None:
    """A test's tier is the tier folder right under tests/, else none."""
    assert tier_of(path) == tier


def test_every_test_file_is_in_a_tier_folder() -> None:
    """No test_*.py lies outside tests/<tier>/ (it would run in no `make <tier>`)."""
    loose = [p for p in TESTS.rglob("test_*.py") if tier_of(p) is None]
    assert loose == []


def test_each_tier_has_a_registered_marker_and_a_make_target() -> None:
    """pyproject registers one marker per tier and the Makefile has a target for each."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^markers = \[\n(.*?)^\]", pyproject, re.M | re.S)
    assert block is not None
    assert re.findall(r'^\s+"(\w+):', block.group(1), re.M) == list(TIERS)
    makefile = (ROOT / "Makefile").read_text()
    assert re.findall(r"^TIERS := (.*)$", makefile, re.M)[0].split() == list(TIERS)


def test_this_test_carries_its_tier_marker(request: pytest.FixtureRequest) -> None:
    """The collection hook marks a test in tests/unit/ with `unit` and no other tier."""
    names = {m.name for m in request.node.iter_markers()}
    assert names & set(TIERS) == {"unit"}
