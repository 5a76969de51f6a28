"""Live inference: real models off the loop, a circuit breaker around them, bounded work."""

import asyncio
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from conftest import eventually
from fakes.models import publish_model

from paper_trader.clock import SystemClock
from paper_trader.domain import Event, EventKind, Interval, MarketItem, Strength, Venue
from paper_trader.engine import DecisionEngine
from paper_trader.features.engine import FeatureRow
from paper_trader.features.spec import default_spec
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor
from paper_trader.prediction.predictor import Predictor, PredictorConfig
from paper_trader.prediction.registry import ModelRegistry
from paper_trader.prediction.stage import PredictionStage
from paper_trader.runtime.channel import BlockingChannel
from paper_trader.runtime.sdnotify import Heartbeat
from paper_trader.runtime.service import Readiness

SPEC = default_spec()


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def publish(self, event: Event) -> None:
        self.seen.append(event)

    def kinds(self) -> list[str]:
        return [f"{e.kind.value}:{e.data.get('state', '')}" for e in self.seen]


POISON = 999.0  # a model input value that Member(fail_on_poison=True) refuses


class Member:
    """Stands in for a model: counts concurrent calls; can fail, be slow, or wait for a gate."""

    def __init__(
        self,
        *,
        fail: bool = False,
        delay_s: float = 0.0,
        gate: threading.Event | None = None,
        fail_on_poison: bool = False,
        nan_on_poison: bool = False,
    ) -> None:
        self.fail = fail
        self.delay_s = delay_s
        self.gate = gate
        self.fail_on_poison = fail_on_poison
        self.nan_on_poison = nan_on_poison
        self.calls = 0
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.gate is not None:
                assert self.gate.wait(timeout=30), "the test never opened the gate"
            time.sleep(self.delay_s)
            poisoned = (x == POISON).any(axis=1)
            if self.fail or (self.fail_on_poison and bool(poisoned.any())):
                raise RuntimeError("model exploded")
            out = np.tile([0.2, 0.3, 0.5], (len(x), 1))
            if self.nan_on_poison:
                out[poisoned] = np.nan  # no exception: a model's impossible output
            return out
        finally:
            with self._lock:
                self.active -= 1


def bundle_of(members: dict[str, Any], version: str = "v-test") -> ModelBundle:
    metadata = {"spec_hash": SPEC.version_hash, "label": {"horizon": 5, "threshold": 0.003}}
    return ModelBundle(version=version, metadata=MappingProxyType(metadata), members=members)


def rows(n: int, open_time_ms: int = 60_000, *, poison: bool = False) -> list[FeatureRow]:
    rng = np.random.default_rng(n)
    first_input = SPEC.names.index(SPEC.model_inputs[0])
    out = []
    for i in range(n):
        values = rng.normal(size=len(SPEC.names))
        if poison:
            values[first_input] = POISON
        out.append(
            FeatureRow(
                venue=Venue.BINANCE,
                symbol=f"S{i}-USDT",
                interval=Interval.M1,
                open_time_ms=open_time_ms,
                values=tuple(values.tolist()),
                is_ready=True,
            )
        )
    return out


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    models = tmp_path_factory.mktemp("predictor") / "models"
    publish_model(models)
    return ModelRegistry(models).load(SPEC, Interval.M1)


def predictor(config: PredictorConfig, events: Events) -> Predictor:
    return Predictor(SPEC, config, events=events, now_ms=lambda: 0)


MINUTE = 60_000


async def test_a_batch_gets_one_signal_per_row_from_the_real_models(
    real_bundle: ModelBundle,
) -> None:
    """Probabilities equal the bundle's on the model inputs; signals carry version and hash."""
    events = Events()
    p = predictor(PredictorConfig(), events)
    p.install(real_bundle)
    batch = rows(7)
    result = await p.predict(batch)
    assert result is not None
    inputs = [SPEC.names.index(n) for n in SPEC.model_inputs]
    x = np.array([r.values for r in batch])[:, inputs]
    for name, probs in real_bundle.predict(x).items():
        np.testing.assert_array_equal(result.per_model[name], probs)
    assert [s.symbol for s in result.signals] == [r.symbol for r in batch]
    assert {s.model_version for s in result.signals} == {real_bundle.version}
    assert {s.spec_hash for s in result.signals} == {SPEC.version_hash}
    assert all(isinstance(s.strength, Strength) for s in result.signals)
    assert p.entries_blocked() is None
    assert "model_loaded:" in events.kinds()
    p.close()


async def test_without_a_model_nothing_is_predicted_and_the_reason_is_given() -> None:
    """No model: None, and entries are blocked with the reason the lifecycle recorded."""
    p = predictor(PredictorConfig(), Events())
    p.make_unavailable("model v1 was trained on feature spec aaa, the running spec is bbb")
    assert await p.predict(rows(2)) is None
    assert "feature spec aaa" in (p.entries_blocked() or "")
    assert p.health().status.label == "degraded"
    p.close()


async def test_failures_open_the_breaker_then_one_trial_closes_it_on_candle_time() -> None:
    """CLOSED → OPEN after the threshold; refused while open; the recovery time is candle
    time, so the trial comes at the first instant 60 s of candles after the trip."""
    events = Events()
    config = PredictorConfig(failure_threshold=3, recovery_timeout_s=60.0)
    p = predictor(config, events)
    broken = Member(fail=True)
    p.install(bundle_of({"a": broken, "b": Member()}))
    for minute in (1, 2, 3):
        assert await p.predict(rows(1, minute * MINUTE)) is None
    assert "prediction circuit breaker open" in (p.entries_blocked() or "")
    calls = broken.calls
    broken.fail = False
    assert await p.predict(rows(1, 3 * MINUTE + 59_000)) is None
    assert broken.calls == calls  # open: the models are not even called
    assert await p.predict(rows(1, 4 * MINUTE)) is not None
    assert p.entries_blocked() is None
    assert events.kinds()[-3:] == [
        "prediction_breaker:open",
        "prediction_breaker:half_open",
        "prediction_breaker:closed",
    ]
    p.close()


async def test_a_prediction_slower_than_the_timeout_fails_and_is_recorded() -> None:
    """One row, as a one-symbol daemon infers it: the timeout bounds it all the same, the
    instant counts as a failure and a prediction_timeout event carries its candle time."""
    events, gate = Events(), threading.Event()
    p = predictor(PredictorConfig(timeout_s=0.1, failure_threshold=1), events)
    p.install(bundle_of({"slow": Member(gate=gate)}))
    assert await p.predict(rows(1, 7 * MINUTE)) is None
    gate.set()
    assert "TimeoutError" in (p.entries_blocked() or "")
    timeouts = [e for e in events.seen if e.kind is EventKind.PREDICTION_TIMEOUT]
    assert [e.data["candle_time_ms"] for e in timeouts] == [7 * MINUTE]
    assert p.stats()["timeouts"] == 1
    p.close()


async def test_work_in_flight_is_bounded_by_max_concurrent_predictions() -> None:
    """Eight one-row batches at once with a limit of two: at most two run a model at a time."""
    p = predictor(PredictorConfig(max_concurrent=2), Events())
    member = Member(delay_s=0.05)
    p.install(bundle_of({"only": member}))
    results = await asyncio.gather(*(p.predict(rows(1, MINUTE * (i + 1))) for i in range(8)))
    assert all(r is not None for r in results)
    assert member.calls == 8
    assert member.most_active == 2
    p.close()


async def test_a_hung_model_keeps_its_slot_until_its_thread_is_done() -> None:
    """With one slot, a model that hangs past the timeout still holds it: the next instant
    times out waiting for the slot without starting another thread; once the hung call
    returns, predictions flow again."""
    gate = threading.Event()
    p = predictor(PredictorConfig(max_concurrent=1, timeout_s=0.1, failure_threshold=10), Events())
    member = Member(gate=gate)
    p.install(bundle_of({"only": member}))
    assert await p.predict(rows(1, MINUTE)) is None
    assert await p.predict(rows(1, 2 * MINUTE)) is None
    assert member.calls == 1
    gate.set()
    await eventually(lambda: member.active == 0)
    assert await p.predict(rows(1, 3 * MINUTE)) is not None
    assert member.calls == 2
    p.close()


async def test_the_loop_keeps_running_while_models_compute() -> None:
    """The model waits for the loop to tick: it can only finish if it runs off the loop."""
    gate = threading.Event()
    p = predictor(PredictorConfig(), Events())
    p.install(bundle_of({"a": Member(gate=gate), "b": Member()}))

    async def ticker() -> None:
        for _ in range(10):
            await asyncio.sleep(0.001)
        gate.set()

    task = asyncio.create_task(ticker())
    assert await p.predict(rows(3)) is not None
    await task
    p.close()


@pytest.mark.parametrize("fault", ["raises", "returns NaN"])
async def test_a_pass_over_several_instants_decides_each_instant_like_live(fault: str) -> None:
    """A replay's one pass over three instants fails on the middle one's rows (the model
    raises, or gives NaN probabilities for them, which the pass's one check refuses): each
    instant is then inferred alone, so the first and last predict and the middle one fails
    once, exactly as three live instants one by one."""

    async def run(together: bool) -> tuple[list[bool], dict[str, object]]:
        p = predictor(PredictorConfig(failure_threshold=2), Events())
        member = Member(fail_on_poison=fault == "raises", nan_on_poison=fault == "returns NaN")
        p.install(bundle_of({"a": member}))
        batches = [rows(2, MINUTE), rows(2, 2 * MINUTE, poison=True), rows(2, 3 * MINUTE)]
        shared = await p.infer([r for b in batches for r in b], instants=3) if together else None
        made = []
        for i, batch in enumerate(batches):
            start = 2 * i if shared is not None else 0
            result = await p.predict_instant(batch[0].open_time_ms, batch, shared, start)
            made.append(result is not None)
        stats = p.stats()
        p.close()
        return made, stats

    live, live_stats = await run(together=False)
    replay, replay_stats = await run(together=True)
    assert live == replay == [True, False, True]
    assert live_stats == replay_stats


def test_events_say_which_model_is_in_use(tmp_path: Path) -> None:
    """Installing a version publishes model_loaded with the version and the one it replaced."""
    events = Events()
    p = predictor(PredictorConfig(), events)
    p.install(bundle_of({"a": Member()}, "v1"))
    p.install(bundle_of({"a": Member()}, "v2"))
    loaded = [e for e in events.seen if e.kind is EventKind.MODEL_LOADED]
    assert [(e.data["version"], e.data["previous"]) for e in loaded] == [("v1", ""), ("v2", "v1")]
    p.close()


async def test_the_decision_task_shuts_the_executor_down_when_it_stops() -> None:
    """A stopped daemon leaves no prediction thread behind: the engine's stop closes it."""
    before = {t.ident for t in threading.enumerate() if t.name.startswith("predict")}
    p = predictor(PredictorConfig(), Events())
    p.install(bundle_of({"a": Member(), "b": Member()}))
    assert await p.predict(rows(2)) is not None
    mine = [
        t for t in threading.enumerate() if t.name.startswith("predict") and t.ident not in before
    ]
    assert mine
    stage = PredictionStage(p, PredictionMonitor(MonitorConfig(), now_ms=lambda: 0), record=_rows)
    channel: BlockingChannel[MarketItem] = BlockingChannel(8)
    engine = DecisionEngine(channel, _rows, Heartbeat(SystemClock()), prediction=stage)
    task = asyncio.create_task(engine.run(Readiness()))
    channel.close()
    await task
    await eventually(lambda: not any(t.is_alive() for t in mine))


async def _rows(_rows: object) -> None:
    return None
