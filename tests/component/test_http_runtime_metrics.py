"""/metrics' runtime families over loopback, parsed by prometheus_client's own parser: the
inference latency of a real predictor's passes, and the garbage collector's pauses by
generation, heard only while their owner lives."""

import gc
from pathlib import Path

from fakes.control_rig import running_rig
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from test_http import SOURCES, serving
from test_predictor import SPEC, Events, Member, bundle_of, rows

from paper_trader.interfaces.http.metrics import GcPauses, MetricsSources
from paper_trader.prediction.predictor import Predictor, PredictorConfig


class Owner:
    """Stands for the HTTP service whose life the hook lasts."""


def family(text: str, name: str) -> Metric:
    """Return one family of an exposition text."""
    [found] = [f for f in text_string_to_metric_families(text) if f.name == name]
    return found


def samples(metric: Metric, suffix: str, **labels: str) -> list[float]:
    """Return the values of the family's ``name + suffix`` samples with ``labels``."""
    return [
        s.value
        for s in metric.samples
        if s.name == metric.name + suffix and labels.items() <= s.labels.items()
    ]


async def test_inference_latency_counts_each_pass_that_returned(tmp_path: Path) -> None:
    """Three passes predicted, one failed: a histogram of three, its buckets cumulative."""
    predictor = Predictor(SPEC, PredictorConfig(), events=Events(), now_ms=lambda: 0)
    predictor.install(bundle_of({"a": Member(), "b": Member()}))
    for minute in range(3):
        assert await predictor.predict(rows(2, open_time_ms=60_000 * (minute + 1))) is not None
    predictor.install(bundle_of({"a": Member(fail=True)}, version="v-broken"))
    assert await predictor.predict(rows(2, open_time_ms=240_000)) is None
    predictor.close()
    sources = MetricsSources(market=SOURCES.market, inference_latency=predictor.latency.snapshot)
    async with running_rig(tmp_path) as rig, serving(rig, sources=sources) as served:
        text = await served.text("/metrics")

    latency = family(text, "paper_trader_inference_latency_seconds")
    assert latency.type == "histogram"
    assert samples(latency, "_count") == [3.0]
    buckets = samples(latency, "_bucket")
    assert buckets == sorted(buckets)
    assert buckets[-1] == 3.0  # +Inf holds every pass


async def test_gc_pauses_are_a_histogram_per_generation_while_the_owner_lives(
    tmp_path: Path,
) -> None:
    """Collections of generations 0 and 2 are counted under their label; once the owner is
    gone the hook leaves gc.callbacks and nothing more is counted."""
    pauses = GcPauses()
    owner = Owner()
    pauses.watch_while(owner)
    gc.collect(0)
    gc.collect()
    sources = MetricsSources(market=SOURCES.market, gc_pauses=pauses.snapshot)
    async with running_rig(tmp_path) as rig, serving(rig, sources=sources) as served:
        text = await served.text("/metrics")
    del owner
    gc.collect()
    after = dict(pauses.snapshot())

    gc_family = family(text, "paper_trader_gc_pause_seconds")
    assert gc_family.type == "histogram"
    assert {s.labels["generation"] for s in gc_family.samples} == {"0", "1", "2"}
    [young] = samples(gc_family, "_count", generation="0")
    [full] = samples(gc_family, "_count", generation="2")
    assert young >= 1
    assert full >= 1
    assert pauses.record not in gc.callbacks
    gc.collect()
    assert dict(pauses.snapshot())[2].count == after[2].count


async def test_without_runtime_sources_the_families_are_left_out(tmp_path: Path) -> None:
    """A replay's HTTP-less run, or a test's: no empty runtime families."""
    sources = MetricsSources(market=SOURCES.market)
    async with running_rig(tmp_path) as rig, serving(rig, sources=sources) as served:
        text = await served.text("/metrics")
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "paper_trader_inference_latency_seconds" not in names
    assert "paper_trader_gc_pause_seconds" not in names
