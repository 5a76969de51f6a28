"""Live inference: off the event loop, batched, bounded, and guarded by a circuit breaker.
(Just over 400 lines: the slots, executor hops and breaker of one pass belong together.)

The decision task hands over the ready feature rows of a batch (the symbols whose candles
closed together; in a replay or a backfill, many instants share one pass). Every inference
runs in the executor, never on the loop: at most ``small_rows`` rows as one call running the
members one after the other (one thread hop), more with each member in its own thread. Each
holds one of ``max_concurrent`` slots until its threads really finish (so hung models cannot
pile up threads) and waits at most ``timeout_s`` per instant for a slot and the result.

The circuit breaker runs on candle time and is consulted once per instant, in time order, so
a replay that infers five hundred instants in one pass (retried instant by instant if it
fails) and a live run that infers them one by one see the same breaker. After
``failure_threshold`` failed instants in a row it opens: no prediction, so no entry (exits
never depend on it); ``recovery_timeout_s`` of candle time later one trial instant decides.
A timeout is wall-clock time by nature, so each is also published as ``prediction_timeout``
with its candle time: one of the ways a live run can differ from a replay of its candles.
Without a usable model the predictor says why (``unavailable``) and nothing is predicted.
``latency`` times each inference pass that returned (the wait for a slot included), for
``/metrics``.
"""

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from paper_trader.domain import (
    ComponentHealth,
    EventKind,
    EventSource,
    HealthStatus,
    Severity,
    Signal,
)
from paper_trader.features.engine import FeatureRow
from paper_trader.features.spec import FeatureSpec
from paper_trader.prediction.breaker import BreakerState, BreakerTransition, CircuitBreaker
from paper_trader.prediction.bundle import Member, ModelBundle
from paper_trader.prediction.ensemble import Ensemble, SignalThresholds
from paper_trader.prediction.scorecard import WeightPolicy
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.latency import LatencyHistogram
from paper_trader.runtime.logs import get_logger

log = get_logger("predictor")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictorConfig:
    """Limits and signal rules of live inference."""

    max_concurrent: int = 4
    timeout_s: float = 2.0
    small_rows: int = 8  # batches this small run as one executor call: one thread hop, not three
    failure_threshold: int = 5
    recovery_timeout_s: float = 300.0
    thresholds: SignalThresholds = field(default_factory=SignalThresholds)
    policy: WeightPolicy = field(default_factory=WeightPolicy)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """One batch: the rows, their model inputs, each model's probabilities, the signals."""

    rows: tuple[FeatureRow, ...]
    inputs: FloatArray  # (rows, model inputs), in the order of the spec's ``model_inputs``
    per_model: dict[str, FloatArray]
    signals: list[Signal]
    bundle: ModelBundle
    ensemble: Ensemble


@dataclass(frozen=True, slots=True, kw_only=True)
class Inference:
    """The members' probabilities for a batch of rows, before the ensemble combines them."""

    rows: tuple[FeatureRow, ...]
    inputs: FloatArray
    per_model: dict[str, FloatArray]
    stacked: FloatArray  # (models, rows, 3) in the ensemble's model order, checked once
    bundle: ModelBundle
    ensemble: Ensemble


@dataclass(frozen=True, slots=True, kw_only=True)
class InferenceFailure:
    """Why the members could not give probabilities for a batch ("Type: message")."""

    error: str
    timed_out: bool


@dataclass(slots=True)
class _Counters:
    batches: int = 0
    rows: int = 0
    failures: int = 0
    timeouts: int = 0
    refused: int = 0
    no_model: int = 0


class Predictor:
    """Run the loaded model version on batches of feature rows."""

    name = "predictor"
    _source = EventSource(name)

    def __init__(
        self,
        spec: FeatureSpec,
        config: PredictorConfig,
        *,
        events: EventSink | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._columns = np.array([spec.names.index(n) for n in spec.model_inputs])
        self.config = config
        self._events = events
        self._now_ms = now_ms
        self._candle_s = 0.0  # the breaker's clock: the open time of the instant in hand
        self._breaker = CircuitBreaker(
            "prediction",
            failure_threshold=config.failure_threshold,
            recovery_timeout_s=config.recovery_timeout_s,
            clock=lambda: self._candle_s,
        )
        self._slots = asyncio.Semaphore(config.max_concurrent)
        self._executor = ThreadPoolExecutor(
            max_workers=3 * config.max_concurrent, thread_name_prefix="predict"
        )
        self._bundle: ModelBundle | None = None
        self._ensemble: Ensemble | None = None
        self._unavailable = "no model loaded yet"
        self._counters = _Counters()
        self.latency = LatencyHistogram(time.monotonic)

    @property
    def bundle(self) -> ModelBundle | None:
        """Return the model version in use, if any."""
        return self._bundle

    @property
    def ensemble(self) -> Ensemble | None:
        """Return the ensemble of the model version in use, if any."""
        return self._ensemble

    def install(self, bundle: ModelBundle) -> None:
        """Use ``bundle`` from the next batch on; batches in flight finish with the old one."""
        previous = self._bundle.version if self._bundle else None
        self._ensemble = Ensemble(
            tuple(bundle.members),
            model_version=bundle.version,
            spec_hash=bundle.spec_hash,
            thresholds=self.config.thresholds,
            policy=self.config.policy,
        )
        self._bundle = bundle
        self._unavailable = ""
        log.info("model_installed", version=bundle.version, previous=previous)
        self._publish(
            EventKind.MODEL_LOADED,
            Severity.INFO,
            f"model {bundle.version} in use",
            {"version": bundle.version, "previous": previous or ""},
        )

    def make_unavailable(self, reason: str) -> None:
        """Record why there is no usable model (when none is installed, nothing is predicted)."""
        self._unavailable = reason
        log.error("model_unavailable", reason=reason)
        self._publish(EventKind.MODEL_UNAVAILABLE, Severity.CRITICAL, f"no entries: {reason}", {})

    def counts(self) -> tuple[int, int]:
        """Return the predictions made (rows) and the inferences that failed (timeouts too)."""
        return self._counters.rows, self._counters.failures

    def entries_blocked(self) -> str | None:
        """Return why no new entry may be taken now, or None when predictions flow."""
        if self._bundle is None:
            return self._unavailable or "no model loaded"
        if self._breaker.state is not BreakerState.CLOSED:
            snap = self._breaker.snapshot()
            return f"prediction circuit breaker {snap.state.value}: {snap.last_error}"
        return None

    def may_predict_by(self, at_ms: int) -> bool:
        """Return whether a prediction could be allowed at candle time ``at_ms`` (no change)."""
        if self._bundle is None:
            return False
        if self._breaker.state is BreakerState.CLOSED:
            return True
        retry_in = self._breaker.snapshot().retry_in_s
        return retry_in is not None and at_ms / 1000 >= self._candle_s + retry_in

    async def predict(self, rows: Sequence[FeatureRow]) -> Prediction | None:
        """Return the prediction of one instant's rows, or None (no model, breaker, failure)."""
        at_ms = max(row.open_time_ms for row in rows)
        return await self.predict_instant(at_ms, rows, None, 0)

    async def infer(self, rows: Sequence[FeatureRow], *, instants: int = 1) -> Inference | None:
        """Run every model on the rows of ``instants`` instants in one pass (within
        ``instants`` timeouts), for ``predict_instant`` to take each instant's slice; None
        without a model or if the pass failed (the instants are then inferred one by one,
        and only their own failures count against the breaker)."""
        bundle, ensemble = self._bundle, self._ensemble
        if bundle is None or ensemble is None:
            return None
        outcome = await self._infer(bundle, ensemble, rows, instants)
        return outcome if isinstance(outcome, Inference) else None

    async def predict_instant(
        self,
        at_ms: int,
        rows: Sequence[FeatureRow],
        shared: Inference | None,
        start: int,
    ) -> Prediction | None:
        """Predict one instant at candle time ``at_ms``: consult the breaker, then use rows
        ``start:start + len(rows)`` of the ``shared`` pass, or infer the rows on their own
        when there is none (no pass, another model version, or the pass failed)."""
        bundle, ensemble = self._bundle, self._ensemble
        if bundle is None or ensemble is None:
            self._counters.no_model += 1
            return None
        self._candle_s = at_ms / 1000
        allowed, transition = self._breaker.allow()
        self._report(transition)
        if not allowed:
            self._counters.refused += 1
            return None
        if shared is not None and shared.bundle is bundle:
            outcome: Inference | InferenceFailure = shared
        else:
            outcome, start = await self._infer(bundle, ensemble, rows, 1), 0
        if isinstance(outcome, InferenceFailure):
            self._failed(at_ms, outcome, len(rows))
            return None
        return self._conclude(at_ms, outcome, start, start + len(rows))

    def _conclude(
        self, at_ms: int, inference: Inference, start: int, stop: int
    ) -> Prediction | None:
        """Return the signals of rows ``start:stop`` of an inference, with the current weights."""
        rows = inference.rows[start:stop]
        per_model = {name: p[start:stop] for name, p in inference.per_model.items()}
        try:
            signals = inference.ensemble.signals_of(
                [(r.venue, r.symbol, r.interval) for r in rows],
                [r.open_time_ms for r in rows],
                inference.stacked[:, start:stop],
            )
        except Exception as exc:  # a broken ensemble counts like a broken model  # noqa: BLE001
            failure = InferenceFailure(error=f"{type(exc).__name__}: {exc}", timed_out=False)
            self._failed(at_ms, failure, len(rows))
            return None
        self._report(self._breaker.record_success())
        self._counters.batches += 1
        self._counters.rows += len(rows)
        return Prediction(
            rows=rows,
            inputs=inference.inputs[start:stop],
            per_model=per_model,
            signals=signals,
            bundle=inference.bundle,
            ensemble=inference.ensemble,
        )

    def _failed(self, at_ms: int, failure: InferenceFailure, rows: int) -> None:
        self._counters.failures += 1
        log.error("prediction_failed", error=failure.error, rows=rows, candle_time_ms=at_ms)
        if failure.timed_out:
            self._counters.timeouts += 1
            self._publish(
                EventKind.PREDICTION_TIMEOUT,
                Severity.WARNING,
                f"no prediction for the candles of {at_ms}: {failure.error}",
                {"candle_time_ms": at_ms, "rows": rows, "timeout_s": self.config.timeout_s},
            )
        self._report(self._breaker.record_failure(failure.error))

    async def _infer(
        self,
        bundle: ModelBundle,
        ensemble: Ensemble,
        rows: Sequence[FeatureRow],
        instants: int,
    ) -> Inference | InferenceFailure:
        x = np.stack([row.array for row in rows])[:, self._columns]  # no per-value work
        started = self.latency.now()
        try:
            per_model = await self._run_members(bundle, x, self.config.timeout_s * instants)
            self.latency.observe_since(started)
            stacked = ensemble.stack(per_model)  # the whole pass checked once, not per instant
        except TimeoutError as exc:
            return InferenceFailure(error=f"TimeoutError: {exc}", timed_out=True)
        except Exception as exc:  # failure or bad output: against the breaker  # noqa: BLE001
            return InferenceFailure(error=f"{type(exc).__name__}: {exc}", timed_out=False)
        return Inference(
            rows=tuple(rows),
            inputs=x,
            per_model=per_model,
            stacked=stacked,
            bundle=bundle,
            ensemble=ensemble,
        )

    async def _run_members(
        self, bundle: ModelBundle, x: FloatArray, timeout_s: float
    ) -> dict[str, FloatArray]:
        """Run the members in the executor within a slot and ``timeout_s``.

        The slot is given back when the threads are done, not when the wait ends: work that
        outlives its timeout still counts against ``max_concurrent``.
        """
        loop = asyncio.get_running_loop()
        members = bundle.members
        try:
            async with asyncio.timeout(timeout_s):
                await self._slots.acquire()
                work: asyncio.Future[Any]
                if len(x) <= self.config.small_rows:
                    work = loop.run_in_executor(self._executor, _predict_all, members, x)
                else:
                    work = asyncio.gather(
                        *(
                            loop.run_in_executor(self._executor, m.predict_proba, x)
                            for m in members.values()
                        )
                    )
                work.add_done_callback(self._release_slot)
                results = await asyncio.shield(work)
        except TimeoutError:
            raise TimeoutError(f"prediction took longer than {timeout_s:g} s") from None
        if isinstance(results, dict):
            return results
        return dict(zip(members, results, strict=True))

    def _release_slot(self, work: "asyncio.Future[Any]") -> None:
        self._slots.release()
        if not work.cancelled():
            work.exception()  # retrieved here: a timed-out batch's error is already counted

    def _report(self, transition: BreakerTransition | None) -> None:
        if transition is None:
            return
        opened = transition.current is BreakerState.OPEN
        (log.error if opened else log.info)(
            "prediction_breaker",
            previous=transition.previous.value,
            state=transition.current.value,
            reason=transition.reason,
        )
        self._publish(
            EventKind.PREDICTION_BREAKER,
            Severity.CRITICAL if opened else Severity.INFO,
            f"prediction breaker {transition.current.value}: {transition.reason}",
            {"state": transition.current.value, "failures": transition.consecutive_failures},
        )

    def _publish(
        self, kind: EventKind, severity: Severity, message: str, data: dict[str, str | int | float]
    ) -> None:
        if self._events is not None:
            self._events.publish(
                self._source.event(kind, severity, message, at_ms=self._now_ms(), data=data)
            )

    def stats(self) -> dict[str, object]:
        """Return the counters and the breaker's state, for logs and /status."""
        snap = self._breaker.snapshot()
        return {
            "model_version": self._bundle.version if self._bundle else None,
            "batches": self._counters.batches,
            "rows": self._counters.rows,
            "failures": self._counters.failures,
            "timeouts": self._counters.timeouts,
            "refused_by_breaker": self._counters.refused,
            "skipped_without_model": self._counters.no_model,
            "breaker": snap.state.value,
            "breaker_trips": snap.trips,
            "entries_blocked": self.entries_blocked(),
        }

    def health(self) -> ComponentHealth:
        """OK while predicting; DEGRADED without a model or with the breaker not closed."""
        blocked = self.entries_blocked()
        if blocked is None:
            assert self._bundle is not None
            detail = f"model {self._bundle.version}, {self._counters.rows} predictions"
            return ComponentHealth(component=self.name, status=HealthStatus.OK, detail=detail)
        return ComponentHealth(
            component=self.name, status=HealthStatus.DEGRADED, detail=f"no entries: {blocked}"
        )

    def close(self) -> None:
        """Stop the executor threads (work in flight finishes; nothing new starts)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _predict_all(members: Mapping[str, Member], x: FloatArray) -> dict[str, FloatArray]:
    """Run every member on ``x`` in this thread, one after the other."""
    return {name: member.predict_proba(x) for name, member in members.items()}
