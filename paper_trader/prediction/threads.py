"""How training's threads wait for each other: OpenMP's wait policy, set before it loads.

XGBoost (and scikit-learn's compiled parts) run their threads on libgomp. Unless told
otherwise, a libgomp thread that reaches a barrier first spins for about 3 ms (300,000 spins)
before it sleeps, and XGBoost's ``hist`` method passes several barriers per tree level. On an
idle machine the spin saves a wake-up; beside a CPU-bound process on two cores it burns the
core the other thread needs to reach the barrier: the fit of the three models took 30-50 times
as long (``bench/retrain.py``). With ``OMP_WAIT_POLICY=PASSIVE`` a waiting thread sleeps at
once, which costs little idle (see the bench's table) and keeps training within twice its idle
time beside a busy neighbour.

libgomp reads the variables once, when the library loads, so the default is put into the
process's environment before scikit-learn or XGBoost is imported (this package's
``__init__`` does it, and every model library import of the project is below this package),
and into the retraining process's environment. A user's own ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` is left as it is.
"""

import os
from collections.abc import Mapping

WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
THREAD_DEFAULTS: Mapping[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}


def with_thread_defaults(environment: Mapping[str, str]) -> dict[str, str]:
    """Return ``environment`` with the wait policy added unless it already sets one."""
    out = dict(environment)
    if not any(out.get(name) for name in WAIT_VARIABLES):
        out.update(THREAD_DEFAULTS)
    return out


def apply_thread_defaults() -> None:
    """Add the wait policy to this process's environment unless the user set one."""
    if not any(os.environ.get(name) for name in WAIT_VARIABLES):
        os.environ.update(THREAD_DEFAULTS)
