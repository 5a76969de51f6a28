"""Live inference: real models off the loop, a circuit breaker around them, bounded work."""

import asyncio
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from fakes.models import publish_model

from paper_trader.domain import Event, EventKind, Interval, Strength, Venue
from paper_trader.features.engine import FeatureRow
from paper_trader.features.spec import default_spec
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.predictor import Predictor, PredictorConfig
from paper_trader.prediction.registry import ModelRegistry

SPEC = default_spec()


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def publish(self, event: Event) -> None:
        self.seen.append(event)

    def kinds(self) -> list[str]:
        return [f"{e.kind.value}:{e.data.get('state', '')}" for e in self.seen]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Member:
    """Stands in for a model: counts concurrent calls, can fail or be slow."""

    def __init__(self, *, fail: bool = False, delay_s: float = 0.0) -> None:
        self.fail = fail
        self.delay_s = delay_s
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
            time.sleep(self.delay_s)
            if self.fail:
                raise RuntimeError("model exploded")
            return np.tile([0.2, 0.3, 0.5], (len(x), 1))
        finally:
            with self._lock:
                self.active -= 1


def bundle_of(members: dict[str, Any], version: str = "v-test") -> ModelBundle:
    metadata = {"spec_hash": SPEC.version_hash, "label": {"horizon": 5, "threshold": 0.003}}
    return ModelBundle(version=version, metadata=MappingProxyType(metadata), members=members)


def rows(n: int, open_time_ms: int = 60_000) -> list[FeatureRow]:
    rng = np.random.default_rng(n)
    return [
        FeatureRow(
            venue=Venue.BINANCE,
            symbol=f"S{i}-USDT",
            interval=Interval.M1,
            open_time_ms=open_time_ms,
            values=tuple(rng.normal(size=len(SPEC.names)).tolist()),
            is_ready=True,
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    models = tmp_path_factory.mktemp("predictor") / "models"
    publish_model(models)
    return ModelRegistry(models).load(SPEC, Interval.M1)


def predictor(config: PredictorConfig, events: Events, clock: Clock | None = None) -> Predictor:
    return Predictor(SPEC, config, events=events, now_ms=lambda: 0, monotonic=clock or Clock())


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


async def test_failures_open_the_breaker_then_one_trial_closes_it() -> None:
    """CLOSED → OPEN after the threshold; refused while open; HALF_OPEN trial → CLOSED."""
    events, clock = Events(), Clock()
    config = PredictorConfig(failure_threshold=3, recovery_timeout_s=60.0)
    p = predictor(config, events, clock)
    broken = Member(fail=True)
    p.install(bundle_of({"a": broken, "b": Member()}))
    for _ in range(3):
        assert await p.predict(rows(1)) is None
    assert "prediction circuit breaker open" in (p.entries_blocked() or "")
    calls = broken.calls
    assert await p.predict(rows(1)) is None
    assert broken.calls == calls  # open: the models are not even called
    clock.now = 61.0
    broken.fail = False
    assert await p.predict(rows(1)) is not None
    assert p.entries_blocked() is None
    assert events.kinds()[-3:] == [
        "prediction_breaker:open",
        "prediction_breaker:half_open",
        "prediction_breaker:closed",
    ]
    p.close()


async def test_a_prediction_slower_than_the_timeout_counts_as_a_failure() -> None:
    """The timeout bounds how long a batch may hold the decision task."""
    p = predictor(PredictorConfig(timeout_s=0.1, failure_threshold=1, inline_rows=0), Events())
    p.install(bundle_of({"slow": Member(delay_s=0.5)}))
    assert await p.predict(rows(1)) is None
    assert "TimeoutError" in (p.entries_blocked() or "")
    p.close()


async def test_work_in_flight_is_bounded_by_max_concurrent_predictions() -> None:
    """Eight batches at once with a limit of two: at most two run a model at a time."""
    p = predictor(PredictorConfig(max_concurrent=2, inline_rows=0), Events())
    member = Member(delay_s=0.05)
    p.install(bundle_of({"only": member}))
    results = await asyncio.gather(*(p.predict(rows(1, 60_000 * (i + 1))) for i in range(8)))
    assert all(r is not None for r in results)
    assert member.calls == 8
    assert member.most_active == 2
    p.close()


async def test_the_loop_keeps_running_while_models_compute() -> None:
    """Models run in executor threads: a ticker on the loop advances during a slow batch."""
    p = predictor(PredictorConfig(inline_rows=0), Events())
    p.install(bundle_of({"a": Member(delay_s=0.3), "b": Member(delay_s=0.3)}))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    assert await p.predict(rows(3)) is not None
    task.cancel()
    assert ticks >= 10
    p.close()


def test_events_say_which_model_is_in_use(tmp_path: Path) -> None:
    """Installing a version publishes model_loaded with the version and the one it replaced."""
    events = Events()
    p = predictor(PredictorConfig(), events)
    p.install(bundle_of({"a": Member()}, "v1"))
    p.install(bundle_of({"a": Member()}, "v2"))
    loaded = [e for e in events.seen if e.kind is EventKind.MODEL_LOADED]
    assert [(e.data["version"], e.data["previous"]) for e in loaded] == [("v1", ""), ("v2", "v1")]
    p.close()
