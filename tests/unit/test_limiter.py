"""The shared limiter's congestion model (function/cloud/client.py ``Limiter``), on a fake
clock: a burst is one signal, the floor is relative, recovery follows the cubic, and only
429s move the shared rate."""

from __future__ import annotations

import pytest

from function.cloud.client import CloudClient, Limiter
from function.errors import TransportError
from tests.unit.fakes import FakeTime, ScriptedTransport, make_runtime, make_settings, response

PATH = "/v2/p/cloudvolumes/detail"


class Clock:
    """A clock that moves only when told to (or when the limiter sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def limiter(rate: float = 200.0, in_flight: int = 20) -> tuple[Limiter, Clock]:
    clock = Clock()
    return Limiter(in_flight, rate, clock.sleep, clock=clock), clock


def test_burst_of_429s_is_one_decrease() -> None:
    """Twenty requests sent together and all answered 429 cost one decrease (to BETA times
    the rate), not twenty halvings."""
    lim, clock = limiter(200.0)
    sent = []
    for _ in range(20):
        with lim:
            sent.append(lim.now())
    clock.now += 0.05  # one round trip later, the answers come back together
    for at in sent:
        lim.throttled(None, at)
    assert lim.throttles == 20
    assert lim.decreases == 1
    assert lim.rate == pytest.approx(200.0 * Limiter.BETA)


def test_later_round_trip_is_a_new_signal() -> None:
    """A 429 for a request sent after the last decrease, a decrease interval later, is a
    fresh signal: one more decrease."""
    lim, clock = limiter(200.0)
    first = lim.now()
    clock.now += 0.05
    lim.throttled(None, first)
    clock.now += 0.5
    later = lim.now()
    clock.now += Limiter.DECREASE_INTERVAL
    lim.throttled(None, later)
    assert lim.decreases == 2
    assert lim.rate == pytest.approx(200.0 * Limiter.BETA**2)


def test_429s_within_the_interval_are_one_signal() -> None:
    """A 429 for a request sent after the last decrease but answered within
    DECREASE_INTERVAL of it belongs to the same throttling window: no second decrease."""
    lim, clock = limiter(200.0)
    lim.throttled(None, clock.now)
    clock.now += 0.1
    sent = lim.now()
    clock.now += 0.05
    lim.throttled(None, sent)
    assert lim.decreases == 1 and lim.throttles == 2


def test_429_without_send_time_counts_once_per_round_trip() -> None:
    """Without a send time a 429 is dated one smoothed round trip back: 429s within one round
    trip of a decrease belong to its burst."""
    lim, clock = limiter(100.0)
    with lim:
        sent = lim.now()
    clock.now += 2.0
    lim.succeeded(sent)  # srtt 2 s: a slow gateway
    lim.throttled(None)
    clock.now += 1.5
    lim.throttled(None)  # within one round trip of the decrease
    assert lim.decreases == 1
    clock.now += 1.0
    lim.throttled(None)
    assert lim.decreases == 2


@pytest.mark.parametrize("rate", [10.0, 200.0, 1000.0])
def test_floor_is_relative_to_the_configured_rate(rate: float) -> None:
    """However many separate signals come, the rate stops at FLOOR_FRACTION of the
    configured rate, not at an absolute figure."""
    lim, clock = limiter(rate)
    for _ in range(50):
        clock.now += 1.0
        lim.throttled(None, clock.now - 0.01)
    assert lim.decreases == 50
    assert lim.rate == pytest.approx(rate * Limiter.FLOOR_FRACTION)


def test_recovery_follows_the_cubic_over_time() -> None:
    """After a decrease, successes win the rate back with time: back at the rate that was
    throttled after K seconds, then on to the configured ceiling, never down."""
    lim, clock = limiter(200.0)
    lim.throttled(None, clock.now)
    assert lim.rate == pytest.approx(140.0)
    k = ((200.0 - 140.0) / Limiter.C) ** (1 / 3)
    rates = []
    for step in range(1, 41):
        clock.now += k / 10
        lim.succeeded(clock.now - 0.01)
        rates.append(lim.rate)
        if step == 10:
            assert lim.rate == pytest.approx(200.0)
    assert rates == sorted(rates)
    assert rates[0] > 140.0 and rates[-1] == 200.0


def test_success_without_elapsed_time_wins_nothing() -> None:
    """Successes right after a decrease do not undo it: recovery is paid in time, not in
    the number of answers."""
    lim, clock = limiter(200.0)
    lim.throttled(None, clock.now)
    for _ in range(100):
        lim.succeeded(clock.now)
    assert lim.rate == pytest.approx(140.0)


def test_decrease_spends_the_burst() -> None:
    """After a decrease, the next request waits its turn at the new rate instead of going in
    a burst."""
    lim, clock = limiter(10.0, in_flight=8)
    lim.throttled(None, clock.now)
    with lim:
        pass
    assert clock.waits == [pytest.approx(1 / 7.0)]


def test_5xx_and_resets_leave_the_shared_rate_alone() -> None:
    """503, 500, 502 and connection resets are retried per request; the shared rate and the
    decrease count do not move."""
    clock = Clock()
    lim = Limiter(8, 50.0, clock.sleep, clock=clock)
    transport = ScriptedTransport(
        response(503, {}),
        response(500, {}),
        TransportError("ConnectionReset", "reset", maybe_sent=False),
        response(502, {}),
        response(200, {}),
    )
    client = CloudClient(make_settings(), make_runtime(FakeTime()), transport, lim)
    client.call("evs", "GET", PATH)
    assert len(transport.sent) == 5
    assert lim.rate == 50.0
    assert lim.decreases == 0 and lim.throttles == 0


def test_request_cost_is_learnt() -> None:
    """The cost of a request in the budget starts cautious and follows what requests cost."""
    lim, _ = limiter()
    assert lim.cost_ms == Limiter.FIRST_COST_MS
    for _ in range(30):
        lim.observe_cost(250.0)
    assert lim.cost_ms == pytest.approx(250.0, rel=0.05)
