"""The one-step resolution of an instant equals the per-prediction code it replaced."""

import math
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType

import numpy as np
import pytest
from fakes.candles import candle_of
from fakes.reference_monitor import (
    ReferenceLiveDistribution,
    ReferenceMonitor,
    ReferenceScorecard,
)

from paper_trader.domain import (
    Candle,
    Event,
    Interval,
    PredictionLog,
    PredictionOutcome,
    PredictionRow,
    Venue,
)
from paper_trader.features.engine import FeatureRow
from paper_trader.features.spec import default_spec
from paper_trader.features.stage import ClosedCandle
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.drift import LiveDistribution, reference_from
from paper_trader.prediction.ensemble import Ensemble, SignalThresholds
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor
from paper_trader.prediction.pending import Calibration, InstantUnresolved
from paper_trader.prediction.predictor import Prediction, Predictor, PredictorConfig
from paper_trader.prediction.scorecard import Scorecard, WeightPolicy
from paper_trader.prediction.stage import VECTORISE_FROM, PredictionStage

SPEC = default_spec()
INPUTS = len(SPEC.model_inputs)
SYMBOLS = [f"S{i}USDT" for i in range(9)]
VERSIONS = {"v1": (("a", "b", "c"), 3), "v2": (("a", "b", "d"), 2)}  # models, horizon
THRESHOLD = 0.002
POLICY = WeightPolicy(window=9, min_resolved=4)
SERIES = "ABCDEFGHI"
CONFIG = MonitorConfig(window=7, accuracy_margin=0.05, psi_window=10, psi_every=3)


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def publish(self, event: Event) -> None:
        self.seen.append(event)


def bundle(version: str, accuracy: float) -> ModelBundle:
    models, horizon = VERSIONS[version]
    training = np.random.default_rng(1).normal(size=(2_000, INPUTS))
    metadata = {
        "spec_hash": SPEC.version_hash,
        "feature_names": list(SPEC.model_inputs),
        "label": {"horizon": horizon, "threshold": THRESHOLD},
        "metrics": {"summary": {"ensemble": {"accuracy": accuracy}}},
        "drift_reference": reference_from(training, SPEC.model_inputs).to_json(),
    }
    members = dict.fromkeys(models)
    return ModelBundle(version=version, metadata=MappingProxyType(metadata), members=members)  # type: ignore[arg-type]


class Side:
    """One monitor with its ensembles: the vectorised code, or the reference."""

    def __init__(self, reference: bool) -> None:
        self.reference = reference
        self.events = Events()
        self.drifts: list[str] = []
        self.monitor = self._monitor()
        self.ensembles: dict[str, Ensemble] = {}

    def _monitor(self) -> PredictionMonitor | ReferenceMonitor:
        kind = ReferenceMonitor if self.reference else PredictionMonitor
        return kind(CONFIG, events=self.events, now_ms=lambda: 0, on_drift=self.drifts.append)

    def restart(self) -> None:
        self.monitor = self._monitor()
        self.ensembles = {}

    def use(self, b: ModelBundle) -> Ensemble:
        ensemble = Ensemble(
            b.members,
            model_version=b.version,
            spec_hash=SPEC.version_hash,
            thresholds=SignalThresholds(buy=0.05, strong=0.15),
            policy=POLICY,
        )
        if self.reference:
            ensemble.scorecard = ReferenceScorecard(ensemble.models, POLICY.window)  # type: ignore[assignment]
        self.ensembles[b.version] = ensemble
        self.monitor.use_model(b)
        return ensemble

    def resolve(self, candles: list[Candle]) -> list[PredictionOutcome]:
        if isinstance(self.monitor, ReferenceMonitor):
            return [o for c in candles for o in self.monitor.on_candle(c)]
        return self.monitor.on_instant(candles)


def probabilities(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random rows, some with ties and zeros."""
    p = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    kind = rng.integers(0, 8, size=n)
    p[kind == 0] = [0.4, 0.4, 0.2]
    p[kind == 1] = [0.0, 0.5, 0.5]
    p[kind == 2] = [1.0, 0.0, 0.0]
    return p


def row(symbol: str, at_ms: int) -> FeatureRow:
    return FeatureRow(
        venue=Venue.BINANCE,
        symbol=symbol,
        interval=Interval.M1,
        open_time_ms=at_ms,
        values=(0.0,) * len(SPEC.names),
        is_ready=True,
    )


def predict(
    side: Side, b: ModelBundle, symbols: Sequence[str], at_ms: int, per_model, inputs
) -> Prediction:
    ensemble = side.ensembles[b.version]
    rows = tuple(row(s, at_ms) for s in symbols)
    signals = ensemble.signals([(r.venue, r.symbol, r.interval) for r in rows], at_ms, per_model)
    return Prediction(
        rows=rows,
        inputs=inputs,
        per_model=per_model,
        signals=signals,
        bundle=b,
        ensemble=ensemble,
    )


def close_to(value: float | None, expected: float | None) -> bool:
    if value is None or expected is None:
        return value is expected
    return value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def assert_same_state(new: Side, old: Side) -> None:
    """Scores, counters, alerts, weights: equal (Brier to rounding, see Scorecard.add_many)."""
    a, b = new.monitor.stats(), old.monitor.stats()
    live_a, live_b = a.pop("live"), b.pop("live")
    assert a == b
    assert live_a.keys() == live_b.keys()
    for name in live_a:
        x, y = dict(live_a[name]), dict(live_b[name])
        assert close_to(x.pop("brier"), y.pop("brier"))
        assert x == y
    assert new.ensembles.keys() == old.ensembles.keys()
    for version, ensemble in new.ensembles.items():
        reference = old.ensembles[version]
        assert ensemble.weights() == reference.weights()  # exactly: they make the signals
        for model in ensemble.models:
            assert ensemble.scorecard.count(model) == reference.scorecard.count(model)
            assert ensemble.scorecard.log_loss(model) == reference.scorecard.log_loss(model)
            assert ensemble.scorecard.accuracy(model) == reference.scorecard.accuracy(model)
            assert close_to(ensemble.scorecard.brier(model), reference.scorecard.brier(model))
    assert [(e.message, e.data) for e in new.events.seen] == [
        (e.message, e.data) for e in old.events.seen
    ]
    assert new.drifts == old.drifts


def unresolved(logged: list[PredictionRow], ended: set[tuple[str, int]]) -> list[PredictionRow]:
    return [r for r in logged if (r.symbol, r.open_time_ms) not in ended]


@pytest.mark.parametrize("seed", range(6))
def test_instant_resolution_equals_the_per_candle_reference(seed: int) -> None:
    """Random instants with gaps, expiries, ties, a version change (other models, another
    horizon) and a restart that restores the unresolved predictions: the same outcomes, rows,
    signals, weights, scores and alerts as the per-prediction code."""
    rng = np.random.default_rng(seed)
    accuracy = [0.9, 0.45, 0.35][seed % 3]
    bundles = {v: bundle(v, accuracy) for v in VERSIONS}
    new, old = Side(reference=False), Side(reference=True)
    for side in (new, old):
        side.use(bundles["v1"])
    current = bundles["v1"]
    prices = {s: Decimal(100 + i) for i, s in enumerate(SYMBOLS)}
    logged: list[PredictionRow] = []
    ended: set[tuple[str, int]] = set()
    for t in range(120):
        at_ms = t * Interval.M1.ms
        if t == 50:
            current = bundles["v2"]
            for side in (new, old):
                side.use(current)
        if t == 85:  # a restart: a fresh monitor restores what the log holds unresolved
            # As read back from the log, a row may list its models in another order.
            pending = [
                replace(r, model_probabilities=MappingProxyType(dict(reversed(items))))
                if k % 2
                else r
                for k, r in enumerate(unresolved(logged, ended))
                for items in [list(r.model_probabilities.items())]
            ]
            assert pending
            for side in (new, old):
                side.restart()
                ensemble = side.use(current)
                side.monitor.restore(pending, ensemble)
        closing = [s for s in SYMBOLS if rng.random() > 0.2]
        candles = []
        for s in closing:
            move = rng.choice([Decimal(0), Decimal("0.002"), Decimal(str(rng.normal(0, 0.004)))])
            prices[s] = (prices[s] * (1 + move)).quantize(Decimal("0.0001"))
            p = prices[s]
            candles.append(candle_of(at_ms, p, p, p, p, Decimal(1), symbol=s))
        outcomes = new.resolve(candles)
        assert outcomes == old.resolve(candles)
        ended |= {(o.symbol, o.open_time_ms) for o in outcomes}
        chosen = [s for s in closing if rng.random() > 0.3]
        if not chosen:
            continue
        per_model = {m: probabilities(rng, len(chosen)) for m in current.members}
        inputs = rng.normal(scale=1.0 if t % 40 < 20 else 4.0, size=(len(chosen), INPUTS))
        inputs[rng.random(inputs.shape) < 0.05] = np.nan
        closes = [prices[s] for s in chosen]
        made = [predict(side, current, chosen, at_ms, per_model, inputs) for side in (new, old)]
        assert made[0].signals == made[1].signals
        rows = new.monitor.record(made[0], closes)
        assert rows == old.monitor.record(made[1], closes)
        logged.extend(rows)
        if t % 10 == 0:
            assert_same_state(new, old)
    assert_same_state(new, old)
    stats = new.monitor.stats()
    assert stats["resolved"]
    assert stats["expired"]


def logged(symbol: str, probs: tuple[float, float, float]) -> PredictionRow:
    """A v1 prediction at minute 0 with horizon 1, every model giving ``probs``."""
    models = VERSIONS["v1"][0]
    return PredictionRow(
        venue=Venue.BINANCE,
        symbol=symbol,
        interval=Interval.M1,
        open_time_ms=0,
        model_version="v1",
        spec_hash=SPEC.version_hash,
        close=Decimal(100),
        horizon=1,
        threshold=THRESHOLD,
        probabilities=(0.2, 0.3, 0.5),
        score=0.3,
        strength="buy",
        confidence=0.2,
        model_probabilities=MappingProxyType(dict.fromkeys(models, probs)),
        weights=MappingProxyType(dict.fromkeys(models, 1 / 3)),
    )


def one_bad_row() -> tuple[PredictionMonitor, Ensemble, list[Candle]]:
    """A monitor with due predictions for A to I (enough for the one-step resolution); B's
    rows sum to 1.5, which the ensemble refuses."""
    side = Side(reference=False)
    ensemble = side.use(bundle("v1", 0.5))
    monitor = side.monitor
    assert isinstance(monitor, PredictionMonitor)
    good = (0.2, 0.3, 0.5)
    rows = [logged(s, (0.5, 0.5, 0.5) if s == "B" else good) for s in SERIES]
    monitor.restore(rows, ensemble)
    candles = [candle_of(60_000, *[Decimal(101)] * 4, Decimal(1), symbol=s) for s in SERIES]
    return monitor, ensemble, candles


def test_a_refused_instant_changes_nothing_and_one_candle_at_a_time_finds_the_fault() -> None:
    """The one-step resolution raises and leaves everything as it was; per candle, only the
    candle of the bad row fails."""
    monitor, ensemble, candles = one_bad_row()
    before = monitor.stats()
    with pytest.raises(InstantUnresolved, match=r"sums to 1\.5"):
        monitor.on_instant(candles)
    assert monitor.stats() == before
    assert ensemble.scorecard.count("a") == 0
    assert [o.outcome for o in monitor.on_candle(candles[0])] == ["resolved"]
    with pytest.raises(ValueError, match="sum to"):
        monitor.on_candle(candles[1])
    assert [o.outcome for o in monitor.on_candle(candles[2])] == ["resolved"]
    assert ensemble.scorecard.count("a") == 2


async def test_the_stage_quarantines_only_the_symbol_whose_prediction_is_bad() -> None:
    """A refused instant is resolved again candle by candle: B is the batch's one fault, and
    every other symbol's outcome is logged."""
    monitor, ensemble, candles = one_bad_row()
    assert len(candles) >= VECTORISE_FROM  # the one-step path is tried, and refuses
    logged: list[PredictionLog] = []

    async def record(log: PredictionLog) -> None:
        logged.append(log)

    predictor = Predictor(SPEC, PredictorConfig(), events=Events(), now_ms=lambda: 0)
    stage = PredictionStage(predictor, monitor, record=record)
    try:
        out = await stage.on_batch([ClosedCandle(candle=c, row=None) for c in candles])
    finally:
        stage.close()
    assert list(out.faults) == [("B", 60_000)]
    assert out.faults[("B", 60_000)].startswith("resolving predictions: ValueError")
    assert not logged  # the decision task commits the batch's log with its decisions
    assert [(o.symbol, o.outcome) for o in out.log.outcomes] == [
        (s, "resolved") for s in SERIES if s != "B"
    ]
    assert ensemble.scorecard.count("a") == len(SERIES) - 1
    assert stage.errors == 1


@pytest.mark.parametrize(("window", "sizes"), [(1, [3, 1, 2]), (5, [2, 7, 1, 12, 5]), (9, [30])])
def test_scorecard_add_many_equals_add_one_by_one(window: int, sizes: list[int]) -> None:
    """The running log loss is bit for bit the one-by-one sum, across evictions and refreshes."""
    rng = np.random.default_rng(window)
    batch, single = Scorecard(["m"], window), ReferenceScorecard(["m"], window)
    for size in sizes:
        p = probabilities(rng, size)
        labels = rng.integers(0, 3, size=size)
        hits = batch.add_many("m", p, labels)
        expected = []
        for row_, label in zip(p.tolist(), labels.tolist(), strict=True):
            single.add("m", row_, label)
            expected.append(single.accuracy("m") * single.count("m"))
        assert hits.tolist() == pytest.approx(expected, abs=1e-9)
        assert batch.count("m") == single.count("m")
        assert batch.log_loss("m") == single.log_loss("m")
        assert batch.accuracy("m") == single.accuracy("m")
        assert batch.brier("m") == pytest.approx(single.brier("m"), rel=1e-12)


def test_scorecard_add_many_refuses_bad_rows_before_recording() -> None:
    """NaN, wrong shapes and labels out of range raise and leave the window empty."""
    scores = Scorecard(["m"], 5)
    with pytest.raises(ValueError, match="finite"):
        scores.add_many("m", np.array([[0.5, np.nan, 0.5]]), np.array([1]))
    with pytest.raises(ValueError, match="labels"):
        scores.add_many("m", np.array([[0.5, 0.0, 0.5]]), np.array([3]))
    with pytest.raises(ValueError, match="expected"):
        scores.add_many("m", np.array([[0.5, 0.5]]), np.array([1]))
    with pytest.raises(KeyError):
        scores.add_many("x", np.array([[0.5, 0.0, 0.5]]), np.array([1]))
    assert scores.count("m") == 0


def test_calibration_add_many_keeps_the_last_window_in_order() -> None:
    """Batches longer than the window keep its last rows; ECE as from one-by-one adds."""
    rng = np.random.default_rng(3)
    batch, single = Calibration(7), Calibration(7)
    pairs: list[tuple[float, bool]] = []
    for size in [3, 10, 1, 6]:
        p = probabilities(rng, size)
        labels = rng.integers(0, 3, size=size)
        batch.add_many(p, labels)
        for row_, label in zip(p.tolist(), labels.tolist(), strict=True):
            single.add(row_, label)
            top = int(np.argmax(row_))
            pairs = [*pairs, (row_[top], top == label)][-7:]
        assert batch.ece() == single.ece()
        conf = np.array([c for c, _ in pairs])
        hits = np.array([h for _, h in pairs], dtype=np.float64)
        bins = np.minimum((conf * 10).astype(int), 9)
        expected = sum(
            (bins == k).sum() * abs(conf[bins == k].mean() - hits[bins == k].mean())
            for k in np.unique(bins)
        ) / len(conf)
        assert batch.ece() == pytest.approx(expected, rel=1e-12)


def test_live_distribution_add_many_equals_add_one_by_one() -> None:
    """Counts and PSI equal after batches (NaN and infinities included, longer than the window)."""
    training = np.random.default_rng(0).normal(size=(500, 4))
    training[:, 2] = np.round(training[:, 2])  # a discrete feature: fewer bins than the others
    reference = reference_from(training, "wxyz")
    assert len(set(reference.bins)) > 1
    batch, single = LiveDistribution(reference, 12), ReferenceLiveDistribution(reference, 12)
    rng = np.random.default_rng(1)
    for size in [5, 30, 1, 12, 7]:
        rows = rng.normal(scale=2.0, size=(size, 4))
        rows[rng.random(rows.shape) < 0.1] = np.nan
        rows[rng.random(rows.shape) < 0.05] = np.inf
        rows[rng.random(rows.shape) < 0.05] = -np.inf
        batch.add_many(rows)
        for r in rows:
            single.add(r)
        assert batch.size == single.size
        np.testing.assert_array_equal(batch.psi(), single.psi())
        assert batch.worst(4) == single.worst(4)
    assert not math.isnan(batch.psi()[0])
