"""Training's OpenMP wait policy: a default unless the user set one, in place before it loads."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from paper_trader.prediction.models import ModelConfig, build
from paper_trader.prediction.threads import THREAD_DEFAULTS, WAIT_VARIABLES, with_thread_defaults

ROOT = Path(__file__).resolve().parents[2]


def test_an_environment_without_a_wait_policy_gets_the_passive_one() -> None:
    env = with_thread_defaults({"PATH": "/bin", "OMP_WAIT_POLICY": ""})
    assert env == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("name", WAIT_VARIABLES)
def test_a_wait_setting_of_the_user_is_kept_as_it_is(name: str) -> None:
    assert with_thread_defaults({name: "42"}) == {name: "42"}


def openmp_spin_count(**env: str) -> str:
    """Return the spin count libgomp reports when `train`'s module loads the model libraries."""
    clean = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", "import paper_trader.cli.train"],
        env=clean | {"OMP_DISPLAY_ENV": "VERBOSE", "PYTHONPATH": str(ROOT)} | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    spins = [line for line in done.stderr.splitlines() if "GOMP_SPINCOUNT" in line]
    assert spins, done.stderr
    return spins[0].split("=")[1].strip().strip("'")


def test_the_training_command_loads_openmp_with_the_passive_policy() -> None:
    """`train` (and the demo's first model, which runs the same module) never spin-waits."""
    assert THREAD_DEFAULTS == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert openmp_spin_count() == "0"


def test_the_users_own_wait_policy_reaches_openmp() -> None:
    assert openmp_spin_count(OMP_WAIT_POLICY="ACTIVE") == "30000000000"


def test_xgboost_fits_on_one_thread_and_the_forest_on_two() -> None:
    """One XGBoost thread never waits at an OpenMP barrier; the forest's threads never spin."""
    config = ModelConfig()
    assert build("xgboost", config).get_params()["n_jobs"] == 1
    assert build("forest", config).get_params()["n_jobs"] == 2
    assert config.to_json()["xgb_threads"] == 1  # recorded with every model
    assert build("xgboost", ModelConfig(xgb_threads=None, n_jobs=3)).get_params()["n_jobs"] == 3
