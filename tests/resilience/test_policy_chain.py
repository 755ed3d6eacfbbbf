"""A timer policy through a chain of continuations: every invocation reports one
evs.policy.completed with its hop, and every image, whichever hop made it, records the
trigger time of the timer's own run."""

from __future__ import annotations

import itertools

import pytest

from fakecloud import mock_cloud
from function.lifecycle import STARTED_KEY
from function.times import parse_iso
from tests.resilience import TIMER_TIME, log_stream, timer_event  # noqa: F401 - a fixture
from tests.resilience.test_budget import POLICY, VOLUMES, Chain, tagged_cloud

pytestmark = pytest.mark.usefixtures("log_stream")


def test_each_hop_of_a_policy_chain_reports_its_summary() -> None:
    """Hop 0 counts the selection and what it handed on; each continuation counts the
    orders it was handed; the accepted counts add up to every volume once."""
    cloud, ids = tagged_cloud()
    chain = Chain(cloud)
    summaries = []
    with mock_cloud(cloud):
        result = chain.run(timer_event({**POLICY, "keep": 1, "copy_tags": ["backup"]}))
        while True:
            [summary] = [e for e in result["results"] if e["type"] == "evs.policy.completed"]
            summaries.append(summary["data"])
            if len(chain.invocations()) < len(summaries):
                break
            result = chain.run(chain.invocations()[-1]["body"], seed=len(summaries) + 1)

    assert [s["hop"] for s in summaries] == list(range(len(summaries)))
    assert len(summaries) >= 2
    first = summaries[0]
    assert (first["selected"], first["excluded"]) == (VOLUMES, 0)
    for before, after in itertools.pairwise(summaries):
        assert before["handed_on"] == before["deferred"] == after["selected"] > 0
    assert summaries[-1]["handed_on"] == 0
    assert sum(s["accepted"] for s in summaries) == len(ids)

    run_time = parse_iso(TIMER_TIME)
    assert run_time is not None
    for image in cloud.ims._images.values():
        assert image.tags[STARTED_KEY].endswith(f"-{int(run_time.timestamp())}")
        assert image.tags["backup"] == "daily"
