"""The prediction log resolves each prediction H candles later; drift becomes an alert."""

from decimal import Decimal
from types import MappingProxyType

import numpy as np
import pytest
from fakes.candles import candle

from paper_trader.domain import Event, EventKind, Interval, Venue
from paper_trader.features.engine import FeatureRow
from paper_trader.features.spec import default_spec
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.drift import FeatureReference, LiveDistribution, reference_from
from paper_trader.prediction.ensemble import Ensemble, SignalThresholds
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor
from paper_trader.prediction.predictor import Prediction
from paper_trader.prediction.scorecard import WeightPolicy

SPEC = default_spec()
HORIZON = 3
THRESHOLD = 0.003
MODELS = ("a", "b")


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def publish(self, event: Event) -> None:
        self.seen.append(event)


def bundle(*, accuracy: float = 0.5, reference_scale: float = 1.0) -> ModelBundle:
    rng = np.random.default_rng(0)
    training = rng.normal(scale=reference_scale, size=(5_000, len(SPEC.model_inputs)))
    metadata = {
        "spec_hash": SPEC.version_hash,
        "feature_names": list(SPEC.model_inputs),
        "label": {"horizon": HORIZON, "threshold": THRESHOLD},
        "metrics": {"summary": {"ensemble": {"accuracy": accuracy}}},
        "drift_reference": reference_from(training, SPEC.model_inputs).to_json(),
    }
    members = dict.fromkeys(MODELS)
    return ModelBundle(version="v1", metadata=MappingProxyType(metadata), members=members)  # type: ignore[arg-type]


def monitor(events: Events, drifts: list[str], **config: float) -> PredictionMonitor:
    settings = {"window": 20, "psi_window": 200, "psi_every": 50, **config}
    return PredictionMonitor(
        MonitorConfig(**settings),  # type: ignore[arg-type]
        events=events,
        now_ms=lambda: 0,
        on_drift=drifts.append,
    )


def prediction(
    b: ModelBundle, ensemble: Ensemble, index: int, probs: list[float], scale: float = 1.0
) -> Prediction:
    inputs = np.random.default_rng(index).normal(size=(1, len(SPEC.model_inputs))) * scale
    row = FeatureRow(
        venue=Venue.BINANCE,
        symbol="BTCUSDT",
        interval=Interval.M1,
        open_time_ms=index * Interval.M1.ms,
        values=(0.0,) * len(SPEC.names),
        is_ready=True,
    )
    per_model = {m: np.array([probs]) for m in MODELS}
    signals = ensemble.signals([(row.venue, row.symbol, row.interval)], row.open_time_ms, per_model)
    return Prediction(
        rows=(row,),
        inputs=inputs,
        per_model=per_model,
        signals=signals,
        bundle=b,
        ensemble=ensemble,
    )


def setup(**config: float) -> tuple[PredictionMonitor, ModelBundle, Ensemble, Events, list[str]]:
    events, drifts = Events(), []
    b = bundle(accuracy=config.pop("accuracy", 0.5))
    m = monitor(events, drifts, **config)
    m.use_model(b)
    ensemble = Ensemble(
        MODELS,
        model_version="v1",
        spec_hash=SPEC.version_hash,
        thresholds=SignalThresholds(),
        policy=WeightPolicy(window=20, min_resolved=5),
    )
    return m, b, ensemble, events, drifts


@pytest.mark.parametrize(
    ("later_close", "label"), [("100.31", 2), ("100.30", 1), ("99.71", 1), ("99.69", 0)]
)
def test_a_prediction_resolves_at_exactly_h_candles_with_the_fee_aware_label(
    later_close: str, label: int
) -> None:
    """The realised class uses the model's own threshold (0.3 %) on close[t+H] / close[t]."""
    m, b, ensemble, _, _ = setup()
    rows = m.record(prediction(b, ensemble, 10, [0.2, 0.3, 0.5]), [Decimal("100")])
    assert rows[0].horizon == HORIZON
    assert rows[0].close == Decimal("100")
    for i in range(11, 10 + HORIZON):
        assert m.on_candle(candle(i)) == []
    done = m.on_candle(candle(10 + HORIZON, close=Decimal(later_close)))
    assert [(o.outcome, o.label, o.open_time_ms) for o in done] == [
        ("resolved", label, 10 * Interval.M1.ms)
    ]
    assert done[0].forward_return == pytest.approx(float(later_close) / 100 - 1)
    assert ensemble.scorecard.count("a") == 1


def test_a_prediction_whose_candle_never_comes_expires_unscored() -> None:
    """A gap over t+H: expired, and the ensemble's weights learn nothing from it."""
    m, b, ensemble, _, _ = setup()
    m.record(prediction(b, ensemble, 10, [0.2, 0.3, 0.5]), [Decimal("100")])
    done = m.on_candle(candle(10 + HORIZON + 2))
    assert [(o.outcome, o.label) for o in done] == [("expired", None)]
    assert ensemble.scorecard.count("a") == 0
    assert m.stats()["expired"] == 1


def test_live_accuracy_below_the_training_baseline_raises_one_alert() -> None:
    """Baseline 0.9, every prediction wrong: one drift event and one retrain request."""
    m, b, ensemble, events, drifts = setup(accuracy=0.9)
    for i in range(40):
        m.record(prediction(b, ensemble, i, [0.1, 0.1, 0.8]), [Decimal("100")])
        m.on_candle(candle(i + HORIZON, close=Decimal("90")))  # down, predicted up
    alerts = [e for e in events.seen if e.kind is EventKind.MODEL_DRIFT]
    assert len(alerts) == 1
    assert alerts[0].data["kind"] == "accuracy"
    assert "below the walk-forward accuracy 0.900" in alerts[0].message
    assert len(drifts) == 1
    live = m.stats()["live"]
    assert live["ensemble"]["accuracy"] == 0.0  # type: ignore[index]


def test_accurate_predictions_raise_no_alert() -> None:
    """Baseline 0.5, every prediction right: no alert."""
    m, b, ensemble, events, _ = setup(accuracy=0.5)
    for i in range(40):
        m.record(prediction(b, ensemble, i, [0.8, 0.1, 0.1]), [Decimal("100")])
        m.on_candle(candle(i + HORIZON, close=Decimal("90")))
    assert not [e for e in events.seen if e.kind is EventKind.MODEL_DRIFT]


def test_inputs_far_from_the_training_distribution_raise_a_psi_alert() -> None:
    """Live inputs five times wider than training: PSI far above 0.25, one alert."""
    m, b, ensemble, events, drifts = setup()
    for i in range(400):
        m.record(prediction(b, ensemble, i, [0.3, 0.4, 0.3], scale=5.0), [Decimal("100")])
    alerts = [e for e in events.seen if e.kind is EventKind.MODEL_DRIFT]
    assert [a.data["kind"] for a in alerts] == ["psi"]
    assert float(alerts[0].data["observed"]) > 0.25
    assert len(drifts) == 1


def test_inputs_like_the_training_data_raise_no_psi_alert() -> None:
    """The same distribution as training: no alert."""
    m, b, ensemble, events, _ = setup()
    for i in range(400):
        m.record(prediction(b, ensemble, i, [0.3, 0.4, 0.3]), [Decimal("100")])
    assert not [e for e in events.seen if e.kind is EventKind.MODEL_DRIFT]
    assert m.stats()["psi_worst"]


def test_a_psi_alert_comes_with_the_row_that_completes_its_count() -> None:
    """One row an instant: the rows between two scores are added together, yet the alert
    comes with exactly the row that makes the window full at a scoring count (the 200th), and
    after every instant the reported PSI is that of a distribution given every row so far."""
    m, b, ensemble, events, _ = setup()
    reference = LiveDistribution(
        FeatureReference.from_json(b.metadata["drift_reference"]), window=200
    )
    for i in range(260):
        made = prediction(b, ensemble, i, [0.3, 0.4, 0.3], scale=5.0)
        m.record(made, [Decimal("100")])
        reference.add_many(made.inputs)
        alerts = [e for e in events.seen if e.kind is EventKind.MODEL_DRIFT]
        assert len(alerts) == (1 if i >= 199 else 0)
        if i % 37 == 0 or i in (198, 199, 200):
            want = [[name, round(value, 4)] for name, value in reference.worst(3)]
            assert m.stats()["psi_worst"] == want
