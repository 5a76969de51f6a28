"""Risk settings: contradictions are configuration errors naming the variables (exit 2)."""

from decimal import Decimal
from pathlib import Path

import pytest

from paper_trader.app.configs import trader_config
from paper_trader.domain.trading import SizingMethod
from paper_trader.errors import ConfigError
from paper_trader.settings import Settings, load_settings

pytestmark = pytest.mark.usefixtures("settings_free_environment")


def _load(tmp_path: Path, text: str) -> Settings:
    env_file = tmp_path / "test.env"
    env_file.write_text(text)
    return load_settings(env_file, required=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "MAX_POSITION_SIZE=0.9\nMAX_TOTAL_EXPOSURE=0.5\n",
            "MAX_POSITION_SIZE (0.9) is above MAX_TOTAL_EXPOSURE (0.5)",
        ),
        (
            "INITIAL_BALANCE=100\nMIN_NOTIONAL=50\n",
            "MIN_NOTIONAL (50) is above INITIAL_BALANCE * MAX_POSITION_SIZE (25.00)",
        ),
        ("ALLOW_SHORT=true\n", "ALLOW_SHORT=true but EXCHANGE=binance has no shorting"),
        ("TAKE_PROFIT_RISK_REWARD=0\n", "TAKE_PROFIT_RISK_REWARD='0': Input should be greater"),
        ("MAX_DRAWDOWN=1.5\n", "MAX_DRAWDOWN='1.5': Input should be less than or equal to 1"),
        ("MAX_POSITION_SIZE=2\n", "MAX_POSITION_SIZE='2': Input should be less than or equal"),
        ("POSITION_SIZING=kelly\n", "POSITION_SIZING='kelly': Input should be"),
        ("SHORT_MARGIN=0.01\n", "SHORT_MARGIN='0.01': Input should be greater than or equal"),
        ("SHORT_MARGIN=11\n", "SHORT_MARGIN='11': Input should be less than or equal to 10"),
        ("MIN_EDGE_COST_MULTIPLE=-1\n", "MIN_EDGE_COST_MULTIPLE='-1': Input should be greater"),
    ],
)
def test_contradicting_or_impossible_risk_settings_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    """Each refusal is one line that names the variable(s) and says why."""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_shorts_are_allowed_on_a_venue_with_shorting(tmp_path: Path) -> None:
    """Kraken has margin trading: ALLOW_SHORT=true is accepted there."""
    settings = _load(tmp_path, "EXCHANGE=kraken\nALLOW_SHORT=true\n")
    assert trader_config(settings).limits.allow_short is True


def test_risk_settings_reach_the_trader_in_candle_milliseconds(tmp_path: Path) -> None:
    """Durations in seconds become milliseconds of candle time; the fee follows the venue."""
    settings = _load(
        tmp_path,
        "EXCHANGE=bitvavo\nSYMBOLS=BTC-EUR\nSTOP_LOSS_COOLDOWN=90\nMAX_HOLDING_TIME=0\n"
        "POSITION_SIZING=Half_Kelly\nMIN_NOTIONAL=12.5\n",
    )
    config = trader_config(settings)
    assert config.breakers.stop_loss_cooldown_ms == 90_000
    assert config.exits.max_holding_ms == 0
    assert config.sizing.method is SizingMethod.HALF_KELLY
    assert config.limits.min_notional == Decimal("12.5")
    assert config.fills.fee_rate == Decimal("0.0025")


def test_the_short_margin_and_the_cost_edge_reach_the_trader(tmp_path: Path) -> None:
    """SHORT_MARGIN becomes the exact Decimal the collateral is held with; the cost edge's
    multiple defaults to 2 and 0 turns it off."""
    defaults = trader_config(_load(tmp_path, "EXCHANGE=kraken\nALLOW_SHORT=true\n"))
    assert (defaults.limits.short_margin, defaults.limits.min_edge_cost_multiple) == (
        Decimal("0.5"),
        2.0,
    )
    settings = _load(
        tmp_path, "EXCHANGE=kraken\nALLOW_SHORT=true\nSHORT_MARGIN=0.35\nMIN_EDGE_COST_MULTIPLE=0\n"
    )
    config = trader_config(settings)
    assert (config.limits.short_margin, config.limits.min_edge_cost_multiple) == (
        Decimal("0.35"),
        0.0,
    )
