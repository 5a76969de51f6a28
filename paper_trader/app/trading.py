"""Wiring of the trading step: settings → risk configuration, the ledger loader, the stage.

Part of the composition root (``app.py`` calls it); nothing else imports it.
"""

import json
from collections.abc import Awaitable, Callable

import aiosqlite

from paper_trader.broker.config import FillConfig
from paper_trader.clock import Clock
from paper_trader.domain import Candle, Interval, Venue
from paper_trader.domain.trading import Position
from paper_trader.features.spec import FeatureSpec
from paper_trader.interfaces.trade_files import TradeFiles
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig, exact
from paper_trader.runtime.events import EventSink
from paper_trader.settings import Settings
from paper_trader.storage import StorageWriter, candle_at_or_before, load_candles
from paper_trader.storage.ledger_repository import closed_trades, ledger_state, open_positions
from paper_trader.trading.stage import MarketView, RestoredLedger, TradingStage
from paper_trader.trading.state import handled_of
from paper_trader.trading.values import TraderConfig

ATR_COLUMNS = ("atr_14", "atr_pct_14")
RECOVERY_CANDLES = 100_000  # per symbol: stored candles the ledger never handled, at most
_LAST = 2**62  # an open time after every candle


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def trader_config(settings: Settings) -> TraderConfig:
    """Return every trading rule the settings describe."""
    return TraderConfig(
        breakers=BreakerConfig(
            enabled=settings.enable_circuit_breakers,
            max_daily_loss=settings.max_daily_loss,
            max_drawdown=settings.max_drawdown,
            max_consecutive_losses=settings.max_consecutive_losses,
            losing_streak_cooldown_ms=_ms(settings.losing_streak_cooldown),
            min_time_between_trades_ms=_ms(settings.min_time_between_trades),
            stop_loss_cooldown_ms=_ms(settings.stop_loss_cooldown),
            volatility_multiple=settings.volatility_breaker_multiple,
            volatility_window=settings.volatility_window,
            volatility_min_samples=min(120, settings.volatility_window),
        ),
        limits=LimitsConfig(
            max_positions=settings.max_positions,
            max_position_size=settings.max_position_size,
            max_total_exposure=settings.max_total_exposure,
            min_notional=settings.min_notional,
            min_confidence=settings.min_confidence,
            correlation_limit=settings.correlation_limit,
            correlation_window=settings.correlation_window,
            allow_short=settings.allow_short,
            short_margin=exact(settings.short_margin),
            min_edge_cost_multiple=settings.min_edge_cost_multiple,
        ),
        sizing=SizingConfig(
            method=settings.position_sizing,
            risk_per_trade=settings.risk_per_trade,
            kelly_min_trades=settings.kelly_min_trades,
            kelly_cap=settings.kelly_cap,
            volatility_target=settings.volatility_target,
            confidence_full_size=settings.confidence_full_size,
        ),
        exits=ExitConfig(
            stop_loss_atr_multiplier=settings.stop_loss_atr_multiplier,
            take_profit_risk_reward=settings.take_profit_risk_reward,
            trailing_stop=settings.trailing_stop,
            trailing_activation_r=settings.trailing_activation,
            trailing_atr_multiplier=settings.trailing_atr_multiplier,
            max_holding_ms=_ms(settings.max_holding_time),
            exit_on_opposite_signal=settings.exit_on_opposite_signal,
        ),
        fills=FillConfig(
            fee_rate=exact(settings.taker_fee),
            slippage_bps=exact(settings.slippage_bps),
            impact_bps=exact(settings.slippage_impact_bps),
        ),
    )


def ledger_loader(
    conn: aiosqlite.Connection,
    series: list[tuple[Venue, str, Interval]],
    *,
    kelly: int,
    window: int,
) -> Callable[[], Awaitable[RestoredLedger]]:
    """Return the start-up read of the ledger from the writer connection.

    ``kelly`` closed trades are read for the half-Kelly sizing, and ``window`` candles per
    symbol for the rolling returns of the correlation limit.
    """

    async def load() -> RestoredLedger:
        state = await ledger_state(conn)
        positions = await open_positions(conn)
        last_candles: list[Candle] = []
        recent: list[Candle] = []
        unhandled: list[Candle] = []
        if state is not None:
            handled = handled_of(json.loads(state.state_json))
            for venue, symbol, interval in series:
                last = handled.get(symbol)
                if last is None:
                    continue
                mark = await candle_at_or_before(conn, venue, symbol, interval, last)
                last_candles.extend([mark] if mark is not None else [])
                since = last - window * interval.ms
                window_candles = await load_candles(
                    conn, venue, symbol, interval, since_ms=since, limit=window + 1
                )
                recent.extend(c for c in window_candles if c.open_time_ms <= last)
                unhandled.extend(
                    await load_candles(
                        conn, venue, symbol, interval, since_ms=last + 1, limit=RECOVERY_CANDLES
                    )
                )
        last_candles.extend(await _marks_outside(conn, positions, series))
        return RestoredLedger(
            state=state,
            positions=positions,
            history=await closed_trades(conn, limit=kelly),
            last_candles=last_candles,
            recent=sorted(recent, key=lambda c: (c.open_time_ms, c.symbol)),
            unhandled=sorted(unhandled, key=lambda c: (c.open_time_ms, c.symbol)),
        )

    return load


async def _marks_outside(
    conn: aiosqlite.Connection,
    positions: list[Position],
    series: list[tuple[Venue, str, Interval]],
) -> list[Candle]:
    """Return the last stored candle of each position outside ``series`` (its symbol left
    SYMBOLS and the venue no longer lists it): its mark, never its entry price."""
    traded = {symbol for _, symbol, _ in series}
    marks = []
    for p in (p for p in positions if p.symbol not in traded):
        mark = await candle_at_or_before(conn, p.venue, p.symbol, p.interval, _LAST)
        marks.extend([mark] if mark is not None else [])
    return marks


def build_trading_stage(
    settings: Settings,
    conn: aiosqlite.Connection,
    writer: StorageWriter,
    events: EventSink,
    clock: Clock,
    *,
    series: list[tuple[Venue, str, Interval]],
    spec: FeatureSpec,
    venue_now: Callable[[], int] | None,
    files: TradeFiles | None,
    exit_only: frozenset[str] = frozenset(),
) -> TradingStage:
    """Build the trading step of the decision task; no entry is taken on ``exit_only``."""
    names = spec.names
    limit_ms = settings.catchup_limit * settings.interval.ms

    def is_stale(candle: Candle) -> bool:
        if venue_now is None:
            return False  # replay: every candle is "now"
        return venue_now() - candle.close_time_ms > limit_ms

    view = MarketView(
        atr_columns=(names.index(ATR_COLUMNS[0]), names.index(ATR_COLUMNS[1])),
        is_stale=is_stale,
        exit_only=exit_only,
    )
    config = trader_config(settings)
    return TradingStage(
        config,
        initial_balance=settings.initial_balance,
        view=view,
        load=ledger_loader(
            conn,
            series,
            kelly=config.sizing.kelly_window,
            window=config.limits.correlation_window,
        ),
        commit=writer.write,
        events=events,
        now_ms=clock.now_ms,
        on_closed=None if files is None else files.trade_closed,
        on_snapshot=None if files is None else files.snapshot,
    )
