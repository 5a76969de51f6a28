"""The feed's health as /health reads it: critical while its connections keep failing, and
back to ok once one works again (not only after that connection later ends)."""

import dataclasses

from conftest import eventually
from fakes.feed_rig import FAST, running_feed
from test_feed_binance import adapter, manual, subscriptions

from paper_trader.domain import HealthStatus
from paper_trader.simulator import Simulator

FAILING = dataclasses.replace(FAST, failures_before_critical=3, storm_reconnects=1000)


async def test_failed_connections_make_the_feed_critical_until_one_works_again() -> None:
    """Connections closed after their handshake, again and again: CRITICAL with the count in
    the reason; the next connection that works makes it OK again while it stays up."""
    async with (
        Simulator(manual(history=30)) as sim,
        running_feed(adapter(sim), subscriptions("BTCUSDT"), config=FAILING) as rig,
    ):
        await eventually(lambda: rig.feed.health().status is HealthStatus.OK, timeout=10)
        sim.accept_then_close(6)
        sim.drop_connections()
        await eventually(lambda: rig.feed.health().status is HealthStatus.CRITICAL, timeout=10)
        critical = rig.feed.health()
        await eventually(lambda: rig.feed.health().status is HealthStatus.OK, timeout=10)
        recovered = rig.feed.health()
        await sim.advance(candles=2)
        await eventually(lambda: len(rig.emitted) == 22, timeout=10)
        still = rig.feed.health()
    assert "connection attempts in a row failed" in critical.detail
    assert "not connected" in critical.detail
    assert recovered.detail == "binance: connected"
    assert still.status is HealthStatus.OK


async def test_connections_that_work_then_drop_never_make_the_feed_critical() -> None:
    """A venue dropping connections that had delivered candles: reconnecting is degraded,
    never critical, however often it happens."""
    async with (
        Simulator(manual(history=30)) as sim,
        running_feed(adapter(sim), subscriptions("BTCUSDT"), config=FAILING) as rig,
    ):
        await eventually(lambda: rig.feed.health().status is HealthStatus.OK, timeout=10)
        seen: list[HealthStatus] = []

        def reconnected(drops: int) -> bool:
            status = rig.feed.health().status
            seen.append(status)
            return rig.feed.stats.reconnects >= drops and status is HealthStatus.OK

        for drops in range(1, 2 * FAILING.failures_before_critical):
            frames = rig.feed.stats.data_frames
            await sim.advance(candles=1)
            await eventually(lambda frames=frames: rig.feed.stats.data_frames > frames)  # type: ignore[misc]
            sim.drop_connections()
            await eventually(lambda drops=drops: reconnected(drops), timeout=10)  # type: ignore[misc]
    assert HealthStatus.DEGRADED in seen
    assert HealthStatus.CRITICAL not in seen
