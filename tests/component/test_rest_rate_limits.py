"""Each venue's own REST rate-limit signals, over loopback with the real adapters and client.

Bitvavo counts weight in a window and says so on every answer (``bitvavo-ratelimit-remaining``
until ``-resetat``); its 429 (``errorCode`` 110) names no ``Retry-After``, and the older 105
names the ban's end in its text. Kraken throttles with HTTP 200 and an ``error`` list, one of
which names the time to come back. Binance reports the weight used by the whole IP. Waits are
checked as the pause the client computed from the venue's clock, never as elapsed time: where
no real time must pass, the client runs on a manual clock.
"""

import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fakes.bitvavo_server import FakeBitvavo
from fakes.candles import candle
from fakes.kraken_server import FakeKraken, throttled_until

from paper_trader.clock import SystemClock
from paper_trader.domain import Interval, Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.errors import RateLimited
from paper_trader.exchange.binance import BinanceAdapter
from paper_trader.exchange.bitvavo import WS_WEIGHT_RESERVE, BitvavoAdapter
from paper_trader.exchange.download import download
from paper_trader.exchange.kraken import KrakenAdapter
from paper_trader.exchange.rest import (
    CLOCK_MARGIN_S,
    MAX_WAIT_S,
    NO_HINT_BACKOFF,
    HttpRestClient,
    WeightBudget,
)
from paper_trader.exchange.venue_clock import VenueClock
from paper_trader.exchange.wire import Subscription, VenueAdapter
from paper_trader.simulator import Simulator, SimulatorConfig

MINUTE = 60_000


class ManualClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.mono = 1_000.0

    def monotonic(self) -> float:
        return self.mono

    def now_ms(self) -> int:
        return 4_102_444_800_000  # 2100: nothing here may read the local wall clock

    def advance(self, seconds: float) -> None:
        self.mono += seconds


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def sub(symbol: str) -> Subscription:
    return Subscription(parse_pair(symbol), Interval.M1)


def bitvavo(fake: FakeBitvavo) -> BitvavoAdapter:
    return BitvavoAdapter([sub("BTC-EUR")], ws_base=fake.ws_url, rest_base=fake.rest_url)


def kraken(fake: FakeKraken) -> KrakenAdapter:
    return KrakenAdapter([sub("BTC-USD")], ws_base=fake.ws_url, rest_base=fake.rest_url)


def manual_client(
    session: aiohttp.ClientSession, adapter: VenueAdapter, *, synced_to_ms: int | None
) -> tuple[HttpRestClient, WeightBudget, ManualClock]:
    """Return a client on a manual clock; its venue clock synced to ``synced_to_ms`` if given."""
    clock = ManualClock()
    budget = WeightBudget(600, clock)
    venue_clock = VenueClock(clock)
    if synced_to_ms is not None:
        venue_clock.sync(synced_to_ms)
    client = HttpRestClient.for_venue(session, adapter, budget, venue_clock=venue_clock)
    return client, budget, clock


# Bitvavo


async def test_bitvavo_fake_sends_the_ratelimit_headers_on_every_answer_counting_down(
    session: aiohttp.ClientSession,
) -> None:
    """limit, remaining (one less per request) and resetat (window start + 60 s), errors too."""
    async with FakeBitvavo() as fake:
        answers = []
        for path in ("/time", "/time", "/DOGE-EUR/candles"):
            async with session.get(fake.rest_url + path) as response:
                answers.append((response.status, dict(response.headers)))
    [(ok, first), (_, second), (refused, third)] = answers
    assert (ok, refused) == (200, 400)
    assert first["bitvavo-ratelimit-limit"] == "1000"
    assert [h["bitvavo-ratelimit-remaining"] for h in (first, second, third)] == [
        "999",
        "998",
        "997",
    ]
    reset_at = int(first["bitvavo-ratelimit-resetat"])
    assert second["bitvavo-ratelimit-resetat"] == str(reset_at)
    assert fake.server_time_ms + MINUTE <= reset_at < fake.server_time_ms + MINUTE + 5_000
    assert fake.windows == 1


@pytest.mark.parametrize("venue_time", ["synced venue clock", "Date header"])
async def test_bitvavo_429_waits_until_resetat_not_a_minute(
    session: aiohttp.ClientSession, venue_time: str
) -> None:
    """429/110 with resetat 1 s ahead and no Retry-After pauses every request ~1 s, not 60 s."""
    async with FakeBitvavo() as fake:
        now = fake.server_time_ms  # a whole second: the Date header says exactly this
        synced = now if venue_time == "synced venue clock" else None
        client, budget, _ = manual_client(session, bitvavo(fake), synced_to_ms=synced)
        fake.server_time_ms = now  # restart the venue's running clock at a whole second
        fake.set_rate_window(remaining=0, reset_at_ms=now + 1000)
        with pytest.raises(RateLimited, match="HTTP 429") as limited:
            await bitvavo(fake).server_time_ms(client)
    assert limited.value.retry_after_s == pytest.approx(1.0 + CLOCK_MARGIN_S)
    assert budget.delay_s(1) == pytest.approx(1.0 + CLOCK_MARGIN_S)  # every request waits
    assert fake.rate_limited_answers == 1


async def test_bitvavo_absurd_resetat_is_a_capped_wait_not_a_crash(
    session: aiohttp.ClientSession,
) -> None:
    """A resetat three centuries ahead pauses for the cap (Binance's longest ban), no overflow."""
    async with FakeBitvavo() as fake:
        client, budget, _ = manual_client(session, bitvavo(fake), synced_to_ms=fake.server_time_ms)
        fake.set_rate_window(remaining=0, reset_at_ms=9_999_999_999_999_999)
        with pytest.raises(RateLimited) as limited:
            await bitvavo(fake).server_time_ms(client)
    assert limited.value.retry_after_s == MAX_WAIT_S
    assert budget.delay_s(1) == pytest.approx(MAX_WAIT_S)


async def test_bitvavo_pacing_waits_for_resetat_before_remaining_runs_out(
    session: aiohttp.ClientSession,
) -> None:
    """With the window nearly spent, requests wait for its reset instead of earning a 429."""
    async with FakeBitvavo() as fake:
        adapter = bitvavo(fake)
        venue_clock = VenueClock(SystemClock())
        client = HttpRestClient.for_venue(
            session, adapter, WeightBudget(600, SystemClock()), venue_clock=venue_clock
        )
        fake.set_rate_window(
            remaining=WS_WEIGHT_RESERVE + 2, reset_at_ms=fake.venue_now_ms() + 1000
        )
        venue_clock.sync(await adapter.server_time_ms(client))
        times = [await adapter.server_time_ms(client) for _ in range(5)]
    assert times == [fake.server_time_ms] * 5
    assert (fake.rate_limited_answers, client.rate_limited) == (0, 0)
    assert fake.windows == 1  # the arranged window ran out and one new window opened
    assert fake.lowest_remaining == WS_WEIGHT_RESERVE  # the reserve was never spent


async def test_bitvavo_ban_code_105_waits_until_the_end_its_text_names(
    session: aiohttp.ClientSession,
) -> None:
    """105 "... The ban expires at <ms>." pauses until that time, not a blocked 10 minutes."""
    async with FakeBitvavo() as fake:
        now = fake.server_time_ms
        client, budget, _ = manual_client(session, bitvavo(fake), synced_to_ms=now)
        fake.ban(until_ms=now + 5_000)
        with pytest.raises(RateLimited, match="ban expires at") as limited:
            await bitvavo(fake).server_time_ms(client)
    assert limited.value.retry_after_s == pytest.approx(5.0 + CLOCK_MARGIN_S)
    assert budget.delay_s(1) == pytest.approx(5.0 + CLOCK_MARGIN_S)
    assert fake.ban_answers == 1


async def test_bitvavo_download_after_a_429_resumes_at_resetat_with_every_candle(
    tmp_path: Path,
) -> None:
    """The ``download`` command meets an exhausted window, waits ~1 s for it, then completes."""
    history = [
        candle(i, "BTC-EUR", venue=Venue.BITVAVO, start_ms=1_704_153_600_000 - 60 * MINUTE)
        for i in range(60)
    ]
    async with FakeBitvavo() as fake:
        fake.add_history("BTC-EUR", history)
        fake.set_rate_window(remaining=0, reset_at_ms=fake.venue_now_ms() + 1000)
        result = await download(
            bitvavo(fake),
            sub("BTC-EUR"),
            days=1 / 24,
            out=tmp_path / "btc.csv",
            clock=SystemClock(),
            progress=io.StringIO(),
        )
    assert (result.written, result.missing) == (60, 0)
    assert result.requests == 3  # the refused server time, the server time, one page
    assert fake.rate_limited_answers == 1


# Kraken


async def test_kraken_throttled_error_waits_until_the_time_it_names(
    session: aiohttp.ClientSession,
) -> None:
    """HTTP 200 ``EService:Throttled: <unix s>`` is RateLimited until then, not transient."""
    async with FakeKraken() as fake:
        now = fake.server_time_ms
        client, budget, _ = manual_client(session, kraken(fake), synced_to_ms=now)
        fake.throttle(1, throttled_until(now + 3_000))
        with pytest.raises(RateLimited, match="EService:Throttled") as limited:
            await kraken(fake).server_time_ms(client)
    assert limited.value.retry_after_s == pytest.approx(3.0 + CLOCK_MARGIN_S)
    assert budget.delay_s(1) == pytest.approx(3.0 + CLOCK_MARGIN_S)


@pytest.mark.parametrize("error", ["EAPI:Rate limit exceeded", "EGeneral:Too many requests"])
async def test_kraken_throttle_without_a_time_backs_off_briefly_growing_and_capped(
    session: aiohttp.ClientSession, error: str
) -> None:
    """No time named: jittered seconds, doubling per refusal up to the cap; a success resets."""
    async with FakeKraken() as fake:
        adapter = kraken(fake)
        client, _, clock = manual_client(session, adapter, synced_to_ms=fake.server_time_ms)
        waits = []
        fake.throttle(8, error)
        for _ in range(8):
            with pytest.raises(RateLimited, match=error) as limited:
                await adapter.server_time_ms(client)
            waits.append(limited.value.retry_after_s)
            clock.advance(limited.value.retry_after_s)
        assert await adapter.server_time_ms(client) == fake.server_time_ms // 1000 * 1000
        fake.throttle(1, error)
        with pytest.raises(RateLimited) as after_success:
            await adapter.server_time_ms(client)
    ceilings = [NO_HINT_BACKOFF.ceiling(n) for n in range(8)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60]
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling
    assert 0.5 <= after_success.value.retry_after_s <= 1.0


async def test_kraken_429_with_retry_after_is_honoured(session: aiohttp.ClientSession) -> None:
    """An HTTP 429 from Kraken's edge carrying ``Retry-After`` waits that long."""
    async with FakeKraken() as fake:
        client, budget, _ = manual_client(session, kraken(fake), synced_to_ms=None)
        fake.fail_rest(1, status=429, retry_after_s=7)
        with pytest.raises(RateLimited) as limited:
            await kraken(fake).server_time_ms(client)
    assert limited.value.retry_after_s == 7
    assert budget.delay_s(1) == pytest.approx(7)


# Binance


async def test_binance_used_weight_counts_what_other_clients_on_the_ip_spent(
    session: aiohttp.ClientSession,
) -> None:
    """``X-MBX-USED-WEIGHT-1M`` includes another client's 4: our budget of 10 has 5 left."""
    config = SimulatorConfig(speed="manual", history=10, candles=20, weight_limit=10)
    async with Simulator(config) as sim:
        for _ in range(4):  # someone else on the same IP
            async with session.get(sim.rest_url + "/api/v3/time") as response:
                assert response.status == 200
        adapter = BinanceAdapter([sub("BTCUSDT")], ws_base=sim.ws_url, rest_base=sim.rest_url)
        clock = ManualClock()
        budget = WeightBudget(10, clock)
        await adapter.server_time_ms(HttpRestClient.for_venue(session, adapter, budget))
    assert budget.delay_s(5) == 0.0
    assert budget.delay_s(6) == pytest.approx(60.0)
