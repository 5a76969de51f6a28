"""The model's life in the daemon: load at start, train when there is none, retrain, swap.

At start the current version is verified and loaded in a worker thread; a refused or missing
model is logged with its reason and the daemon takes no entries. With ``auto_train`` it then
trains one from the stored candles. Retraining runs on a schedule (``retrain_interval_s``; 0
turns it off) and after a drift alert (at most once per ``drift_cooldown_s``), always as a
separate, lower-priority *process* (``train --from-db --promote-if-better``): the event loop
only waits on its pipes; its environment carries the OpenMP wait policy of ``threads.py``
unless the daemon's has one. The candidate replaces the current model only if it wins on the
most recent held-out data; the new version is then loaded in a worker thread and swapped in
between two batches. While a retraining runs, the loop's lag is sampled every 50 ms (the
last ``LAG_SAMPLES`` kept) and reported with the result. A training process still running
after ``timeout_s`` is killed, logged (``retrain_timed_out``) and reported as failed; the
daemon goes on with the model it has.
"""

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from paper_trader.domain import ComponentHealth, HealthStatus, Interval
from paper_trader.errors import ModelError
from paper_trader.features.spec import FeatureSpec
from paper_trader.prediction.registry import ModelRegistry
from paper_trader.prediction.stage import PredictionStage
from paper_trader.prediction.threads import with_thread_defaults
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("model_lifecycle")
LAG_SAMPLE_S = 0.05
LAG_SAMPLES = 20_000  # the last 1000 s of lag samples make the reported p99
OUTPUT_TAIL = 2_000
TIMED_OUT_EXIT = -9  # the exit code reported for a training process killed at its timeout


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleConfig:
    """When to train, and how to start the training process."""

    interval: Interval
    command: tuple[str, ...]  # the `train --from-db --promote-if-better` command line
    environment: Mapping[str, str]
    auto_train: bool = True
    retrain_interval_s: float = 86_400.0
    drift_cooldown_s: float = 3_600.0
    timeout_s: float = 3_600.0  # RETRAIN_TIMEOUT: a training process is killed past it


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrainResult:
    """One training process: what it said, and how the loop fared meanwhile."""

    exit_code: int
    summary: dict[str, object] | None
    seconds: float
    lag_max_ms: float
    lag_p99_ms: float
    output_tail: str


class ModelLifecycle:
    """Load, train and swap the model; a service of the supervisor."""

    name = "model_lifecycle"

    def __init__(
        self,
        stage: PredictionStage,
        registry: ModelRegistry,
        spec: FeatureSpec,
        config: LifecycleConfig,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        start_gate: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._stage = stage
        self._start_gate = start_gate
        self._first_load = asyncio.Event()
        self._loaded = False
        self._registry = registry
        self._spec = spec
        self.config = config
        self._monotonic = monotonic
        self._wake = asyncio.Event()
        self._reason = ""
        self._last_drift_retrain: float | None = None
        self._training = False

    def request_retrain(self, reason: str) -> None:
        """Retrain soon (after a drift alert), unless one ran within the cooldown or retraining
        is off (``retrain_interval_s`` 0: the model stays the one the daemon started with)."""
        if self.config.retrain_interval_s <= 0:
            log.info("retrain_request_ignored", reason=reason, retrain_interval_s=0)
            return
        now = self._monotonic()
        last = self._last_drift_retrain
        if last is not None and now - last < self.config.drift_cooldown_s:
            log.info(
                "retrain_request_ignored", reason=reason, cooldown_s=self.config.drift_cooldown_s
            )
            return
        self._last_drift_retrain = now
        self._reason = reason
        self._wake.set()

    async def load_at_start(self) -> None:
        """Load the current model before the first candle is handled (the engine calls it)."""
        self._loaded = await self.load()
        self._first_load.set()

    async def run(self, ready: Readiness) -> None:
        """Once the start-up load is done, train if needed, then on schedule or request."""
        ready.set()
        await self._first_load.wait()
        if not self._loaded and self.config.auto_train:
            if self._start_gate is not None:
                await self._start_gate()  # the warm-up's candles are in the database
            await self.retrain("no usable model at start (AUTO_TRAIN=true)")
        while True:
            await self._next_request()
            await self.retrain(self._reason)

    async def _next_request(self) -> None:
        interval = self.config.retrain_interval_s
        self._reason = f"scheduled (RETRAIN_INTERVAL={interval:g} s)"
        try:
            async with asyncio.timeout(interval if interval > 0 else None):
                await self._wake.wait()
        except TimeoutError:
            return
        finally:
            self._wake.clear()

    async def load(self, version: str | None = None) -> bool:
        """Verify and load a version (default: current) in a worker thread; install it."""
        try:
            bundle = await asyncio.to_thread(
                self._registry.load, self._spec, self.config.interval, version
            )
        except ModelError as exc:
            hint = "" if self.config.auto_train else " (AUTO_TRAIN=false: nothing is trained here)"
            self._stage.predictor.make_unavailable(f"{exc}{hint}")
            return False
        self._stage.install(bundle)
        return True

    async def retrain(self, reason: str) -> RetrainResult:
        """Run one training process to its end; install its model if it was promoted."""
        log.info("retrain_started", reason=reason, command=" ".join(self.config.command[-4:]))
        self._training = True
        try:
            result = await self._run_process()
        finally:
            self._training = False
        summary = result.summary or {}
        log.info(
            "retrain_finished",
            reason=reason,
            exit_code=result.exit_code,
            seconds=round(result.seconds, 1),
            loop_lag_max_ms=round(result.lag_max_ms, 2),
            loop_lag_p99_ms=round(result.lag_p99_ms, 2),
            version=summary.get("version"),
            promoted=summary.get("promoted"),
            contest=summary.get("contest"),
        )
        if result.exit_code != 0:
            log.error("retrain_failed", exit_code=result.exit_code, output=result.output_tail)
        elif summary.get("promoted"):
            await self.load(str(summary["version"]))
        return result

    async def _run_process(self) -> RetrainResult:
        started = self._monotonic()
        lags: collections.deque[float] = collections.deque(maxlen=LAG_SAMPLES)
        async with asyncio.TaskGroup() as group:
            sampler = group.create_task(_sample_lag(lags, self._monotonic), name="loop_lag")
            try:
                out, err, code = await self._communicate()
            finally:
                sampler.cancel()
        return RetrainResult(
            exit_code=code,
            summary=_summary(out.decode("utf-8", "replace")),
            seconds=self._monotonic() - started,
            lag_max_ms=max(lags, default=0.0),
            lag_p99_ms=_p99(lags),
            output_tail=err.decode("utf-8", "replace")[-OUTPUT_TAIL:],
        )

    async def _communicate(self) -> tuple[bytes, bytes, int]:
        """Run the training process to its end; kill it if the daemon stops meanwhile."""
        process = await asyncio.create_subprocess_exec(
            *self.config.command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=with_thread_defaults(self.config.environment),
        )
        try:
            async with asyncio.timeout(self.config.timeout_s):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            limit = self.config.timeout_s
            log.error("retrain_timed_out", timeout_s=limit, pid=process.pid)  # noqa: TRY400
            message = f"the training ran longer than RETRAIN_TIMEOUT={limit:g} s: killed"
            return b"", message.encode(), TIMED_OUT_EXIT
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        return out, err, process.returncode or 0

    def health(self) -> ComponentHealth:
        """OK; the detail says when a training process is running."""
        detail = "training a model in a separate process" if self._training else "idle"
        return ComponentHealth(component=self.name, status=HealthStatus.OK, detail=detail)


async def _sample_lag(lags: collections.deque[float], monotonic: Callable[[], float]) -> None:
    """Append how late each 50 ms sleep wakes up, in ms, until cancelled."""
    while True:
        before = monotonic()
        await asyncio.sleep(LAG_SAMPLE_S)
        lags.append(max(0.0, (monotonic() - before - LAG_SAMPLE_S) * 1000))


def _p99(values: Sequence[float] | collections.deque[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _summary(stdout: str) -> dict[str, object] | None:
    """Return the JSON summary `train` printed, or None if it printed none."""
    try:
        value = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
