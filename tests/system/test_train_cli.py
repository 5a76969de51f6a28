"""``run_paper_trader.py train``: a versioned model from CSVs or the database, or exit 2."""

import json
from pathlib import Path

import pytest
from conftest import subprocess_env
from daemon_harness import run_cli
from fakes.models import candle_csv

from paper_trader.domain import Interval
from paper_trader.features.spec import default_spec
from paper_trader.prediction.registry import ModelRegistry

TRAINING = pytest.mark.timeout(300)  # real training processes, on a possibly busy machine


def train_env(tmp_path: Path) -> dict[str, str]:
    """Hermetic settings with a short horizon and two folds, so training takes seconds."""
    (tmp_path / "models").mkdir()
    return subprocess_env(tmp_path, PREDICTION_HORIZON="5", WALK_FORWARD_FOLDS="2")


@TRAINING
def test_train_on_two_csvs_publishes_a_version_with_its_metrics(tmp_path: Path) -> None:
    """Exit 0; the JSON names the version, `current` points to it, the table is on stderr."""
    env = train_env(tmp_path)
    first = candle_csv(tmp_path / "btc.csv", seed=1)
    second = candle_csv(tmp_path / "eth.csv", seed=2)
    args = ["train", "--csv", str(first), "--csv", str(second)]
    done = run_cli([*args, "--symbol", "BTCUSDT", "--symbol", "ETHUSDT"], env, timeout=180)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    registry = ModelRegistry(tmp_path / "models")
    assert registry.current_version() == summary["version"]
    assert summary["series"] == ["BTC-USDT", "ETH-USDT"]
    assert summary["walk_forward"]["ensemble"]["roc_auc"] is not None
    assert "persistence" in done.stderr
    assert "mean  ensemble" in done.stderr
    bundle = registry.load(default_spec(), Interval.M1)
    assert bundle.horizon == 5


@TRAINING
def test_train_from_the_database_uses_the_stored_candles(tmp_path: Path) -> None:
    """Candles replayed into SQLite, then `train --from-db` on them."""
    env = train_env(tmp_path)
    csv = candle_csv(tmp_path / "btc.csv", seed=3)
    replayed = run_cli(
        [
            "replay",
            "--csv",
            str(csv),
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--db",
            env["DB_PATH"],
        ],
        env,
    )
    assert replayed.returncode == 0, replayed.stderr
    done = run_cli(["train", "--from-db", "--symbol", "BTCUSDT"], env, timeout=180)
    assert done.returncode == 0, done.stderr
    meta = ModelRegistry(tmp_path / "models").metadata(json.loads(done.stdout)["version"])
    assert meta["training"]["candles"] == {"BTC-USDT": 2_600}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("short", "too little data for 2 walk-forward folds"),
        ("models_dir_not_creatable", "MODELS_DIR"),
        ("mismatch", "1 --csv file(s) but 2 --symbol(s)"),
        ("bad_row", "btc.csv:3"),
        ("no_db", "--from-db: no database"),
    ],
)
@TRAINING
def test_bad_input_exits_2_with_one_clear_line_and_publishes_nothing(
    tmp_path: Path, case: str, expected: str
) -> None:
    """No traceback, no partial version."""
    env = train_env(tmp_path)
    csv = candle_csv(tmp_path / "btc.csv", count=1_400 if case == "short" else 2_600)
    args = ["train", "--csv", str(csv), "--symbol", "BTCUSDT"]
    if case == "models_dir_not_creatable":
        (tmp_path / "a_file").write_text("not a directory")
        env["MODELS_DIR"] = str(tmp_path / "a_file" / "models")
    elif case == "mismatch":
        args += ["--symbol", "ETHUSDT"]
    elif case == "bad_row":
        lines = csv.read_text().splitlines()
        lines[2] = lines[2].replace(",", ",-", 2)
        csv.write_text("\n".join(lines) + "\n")
    elif case == "no_db":
        args = ["train", "--from-db"]
    done = run_cli(args, env, timeout=180)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert list((tmp_path / "models").iterdir()) == []


@TRAINING
def test_a_model_that_loses_to_the_prior_is_not_made_current_without_force(
    tmp_path: Path,
) -> None:
    """Published, not current, and said on stderr and in the JSON; --force makes it current.
    A MODELS_DIR that does not exist yet is created."""
    env = subprocess_env(
        tmp_path,
        PREDICTION_HORIZON="5",
        WALK_FORWARD_FOLDS="2",
        MODELS_DIR=str(tmp_path / "new" / "models"),
    )
    csv = candle_csv(tmp_path / "btc.csv", seed=11)  # a random walk: the prior is hard to beat
    args = ["train", "--csv", str(csv), "--symbol", "BTCUSDT"]
    refused = run_cli(args, env, timeout=180)
    registry = ModelRegistry(tmp_path / "new" / "models")
    current_after_refusal = registry.current_version()
    forced = run_cli([*args, "--force"], env, timeout=180)

    assert refused.returncode == 0, refused.stderr
    summary = json.loads(refused.stdout)
    check = summary["prior_check"]
    assert check["beats_prior"] is False
    assert check["ensemble_log_loss"] >= check["prior_log_loss"]
    assert summary["promoted"] is False
    note = (
        f"version {summary['version']} loses to the prior out of sample (walk-forward log loss "
        f"{check['ensemble_log_loss']:.4f} vs {check['prior_log_loss']:.4f}): published but "
        "not made current; --force makes it current anyway"
    )
    assert summary["prior_note"] == note
    assert f"paper-trader: {note}" in refused.stderr.splitlines()
    assert current_after_refusal is None
    assert forced.returncode == 0, forced.stderr
    again = json.loads(forced.stdout)
    assert again["promoted"] is True
    assert again["prior_check"]["forced"] is True
    assert again["prior_note"].endswith("; made current anyway (--force)")
    assert registry.versions() == sorted([summary["version"], again["version"]])
    assert registry.current_version() == again["version"]
