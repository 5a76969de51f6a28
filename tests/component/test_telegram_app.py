"""The composition root's Telegram part: off without a token, a bot that answers from the
run's parts with one, and the health and model providers over the real monitor and models."""

import asyncio
from pathlib import Path

import pytest
from fakes.bot_rig import CHAT, OPERATOR
from fakes.control_rig import running_rig
from fakes.models import publish_model
from fakes.telegram_server import FakeTelegram

from paper_trader.app.telegram import health_provider, model_provider, telegram_bot
from paper_trader.clock import SystemClock
from paper_trader.control.system import ModelInfo
from paper_trader.domain import ComponentHealth, HealthStatus, Interval
from paper_trader.features.spec import default_spec
from paper_trader.monitoring.health import HealthMonitor
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor
from paper_trader.prediction.predictor import Predictor, PredictorConfig
from paper_trader.prediction.registry import ModelRegistry
from paper_trader.prediction.stage import PredictionStage
from paper_trader.runtime.service import Readiness
from paper_trader.settings import Settings


class Component:
    """A health reporter with a fixed answer."""

    def __init__(self, status: HealthStatus) -> None:
        self.status = status

    def health(self) -> ComponentHealth:
        return ComponentHealth(component="part", status=self.status, detail="fixed")


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]  # pydantic-settings


@pytest.mark.usefixtures("settings_free_environment")
async def test_without_a_token_there_is_no_bot(tmp_path: Path) -> None:
    """TELEGRAM_BOT_TOKEN empty: None (Telegram off)."""
    async with running_rig(tmp_path) as rig:
        assert rig.writer is not None
        bot = telegram_bot(
            settings(), rig.stage, rig.reader, rig.writer, SystemClock(), 60_000,
            health=lambda: None, model=lambda: None,
        )  # fmt: skip
    assert bot is None


@pytest.mark.usefixtures("settings_free_environment")
async def test_with_a_token_the_bot_answers_from_the_settings_it_was_given(
    tmp_path: Path,
) -> None:
    """TELEGRAM_API_URL, TELEGRAM_CHAT_ID and the token reach the bot; /show_config masks."""
    async with FakeTelegram() as tg, running_rig(tmp_path) as rig:
        assert rig.writer is not None
        chosen = settings(
            telegram_bot_token=tg.token,
            telegram_chat_id=str(CHAT),
            telegram_api_url=tg.api_url,
            log_dir=tmp_path / "logs",
        )
        bot = telegram_bot(
            chosen, rig.stage, rig.reader, rig.writer, SystemClock(), 60_000,
            health=lambda: None, model=lambda: None,
        )  # fmt: skip
        assert bot is not None
        task = asyncio.create_task(bot.run(Readiness()))
        try:
            tg.send_command(CHAT, OPERATOR, "/show_config")
            answers = await tg.wait_for_messages(CHAT, 1, timeout=10)
            while "TELEGRAM_BOT_TOKEN" not in "".join(a.text for a in answers):  # split in parts
                answers = await tg.wait_for_messages(CHAT, len(answers) + 1, timeout=10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    text = "\n".join(a.text for a in answers)
    rows = dict(line.split(maxsplit=1) for line in text.splitlines() if " " in line)
    assert rows["TELEGRAM_BOT_TOKEN"] == "**********"
    assert rows["TELEGRAM_API_URL"] == tg.api_url
    assert tg.token not in text


def test_health_provider_gives_the_latest_check_and_its_score() -> None:
    """The monitor's last snapshot, with the mean score of its components."""
    monitor = HealthMonitor(
        [Component(HealthStatus.OK), Component(HealthStatus.DEGRADED)],
        clock=SystemClock(),
        interval_s=60,
        heartbeat_age_s=lambda: 0.0,
        stale_after_s=30,
        publish_status=lambda _line: None,
        memory_limit_mb=1e6,  # this test process's size is not the point
    )
    provide = health_provider(lambda: monitor.latest)
    assert provide() is None
    monitor.latest = monitor.check()
    view = provide()
    assert view is not None
    # the two reporters' and the monitor's own two (loop lag, memory): (100 + 50 + 100 + 100) / 4
    assert (view.status, view.score, len(view.components)) == (HealthStatus.DEGRADED, 88, 4)


@pytest.mark.timeout(300)
def test_model_provider_reads_the_version_weights_and_baseline(tmp_path: Path) -> None:
    """No model: why entries are blocked; a model: its version, baseline and weights."""
    spec = default_spec()
    predictor = Predictor(spec, PredictorConfig(), now_ms=lambda: 0)
    monitor = PredictionMonitor(MonitorConfig(), now_ms=lambda: 0)

    async def ignore(_rows: object) -> None:
        return None

    stage = PredictionStage(predictor, monitor, record=ignore)
    provide = model_provider(stage)
    empty = provide()
    assert empty == ModelInfo(
        version=None, walk_forward_accuracy=None, live_accuracy=None, resolved=0, pending=0,
        blocked="no model loaded yet",
    )  # fmt: skip
    outcome = publish_model(tmp_path / "models", count=2_600)
    stage.install(ModelRegistry(tmp_path / "models").load(spec, Interval.M1))
    info = provide()
    assert info is not None
    assert info.version == outcome.version
    assert info.walk_forward_accuracy is not None
    assert [name for name, _ in info.weights] == ["forest", "logistic", "xgboost"]
    assert info.blocked is None
    predictor.close()
