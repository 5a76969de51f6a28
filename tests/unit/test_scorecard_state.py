"""The scorecard's state across a stop: what ``state()`` gives, ``restore()`` takes back, so
the adaptive weights after a start are bit for bit those of a run that never stopped."""

import msgspec
import numpy as np
import pytest

from paper_trader.prediction.scorecard import Scorecard, WeightPolicy, adaptive_weights

MODELS = ("forest", "logistic", "xgboost")
POLICY = WeightPolicy(window=50, min_resolved=10)


def outcomes(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (models, n, 3) probabilities (each model's own skill) and n labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    p = rng.dirichlet([1.0, 1.0, 1.0], size=(len(MODELS), n))
    p[0, np.arange(n), labels] += 0.6  # the first model knows more than the others
    return p / p.sum(axis=2, keepdims=True), labels


def feed(card: Scorecard, p: np.ndarray, labels: np.ndarray, *, one_by_one: bool) -> None:
    if one_by_one:
        for k, label in enumerate(labels.tolist()):
            for m, name in enumerate(MODELS):
                card.add(name, p[m, k].tolist(), label)
    else:
        card.add_models(MODELS, p, labels)


def figures(card: Scorecard) -> tuple[object, ...]:
    losses = {m: card.log_loss(m) for m in MODELS}
    weights = adaptive_weights(losses, POLICY) if None not in losses.values() else None  # type: ignore[arg-type]
    return (card.snapshot(), weights, card.added)


@pytest.mark.parametrize(("stop_at", "one_by_one"), [(7, True), (50, False), (123, False)])
def test_a_restored_scorecard_goes_on_bit_for_bit_like_one_never_stopped(
    stop_at: int, one_by_one: bool
) -> None:
    """Stopped before the window is full, at a refresh, and past several refreshes: the
    losses, Brier scores, hit rates and weights after more outcomes are exactly equal."""
    p, labels = outcomes(stop_at, 400)
    never = Scorecard(MODELS, POLICY.window)
    feed(never, p, labels, one_by_one=one_by_one)

    before = Scorecard(MODELS, POLICY.window)
    feed(before, p[:, :stop_at], labels[:stop_at], one_by_one=one_by_one)
    after = Scorecard(MODELS, POLICY.window)
    after.restore(before.state())
    assert figures(after) == figures(before)
    for start in range(stop_at, 400, 37):  # the rest in uneven steps
        part = slice(start, min(start + 37, 400))
        feed(after, p[:, part], labels[part], one_by_one=one_by_one)

    assert figures(after) == figures(never)
    assert after.state() == never.state()
    assert figures(after)[1] != dict.fromkeys(sorted(MODELS), 1 / 3)  # the weights did adapt


def test_a_state_of_another_window_or_other_models_or_garbage_is_refused_unchanged() -> None:
    """A refused state changes nothing: the scorecard keeps what it had."""
    p, labels = outcomes(1, 60)
    card = Scorecard(MODELS, POLICY.window)
    feed(card, p, labels, one_by_one=False)
    kept = card.state()
    other_window = Scorecard(MODELS, POLICY.window + 1)
    other_models = Scorecard(("forest", "logistic"), POLICY.window)
    truncated = msgspec.msgpack.decode(kept)
    truncated["tracks"]["forest"]["loss"] = truncated["tracks"]["forest"]["loss"][:-8]
    inconsistent = msgspec.msgpack.decode(kept)
    inconsistent["tracks"]["xgboost"]["head"] = POLICY.window
    wrong_type = msgspec.msgpack.decode(kept)
    wrong_type["tracks"]["logistic"]["count"] = 3.0
    cases = {
        "window": other_window.state(),
        "models": other_models.state(),
        "not MessagePack": b"\xc1 not a state",
        "not a mapping": msgspec.msgpack.encode([1, 2, 3]),
        "a short ring": msgspec.msgpack.encode(truncated),
        "a head past the window": msgspec.msgpack.encode(inconsistent),
        "a float count": msgspec.msgpack.encode(wrong_type),
    }
    for what, data in cases.items():
        with pytest.raises(ValueError, match=r"scorecard|track|window|models"):
            card.restore(data)
        assert card.state() == kept, what
