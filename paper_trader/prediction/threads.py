"""How training's threads share the cores: XGBoost on one thread, OpenMP told not to spin.

XGBoost runs its threads on libgomp. Unless told otherwise, a libgomp thread that reaches a
barrier first spins for about 3 ms (300,000 spins) before it sleeps, and XGBoost's ``hist``
method passes several barriers per tree level. Beside a CPU-bound process on two cores the
spin burns the core the other thread needs to reach the barrier: training took 2.6-6 times as
long beside one busy process, and 3-5 times as long "idle" while other processes ran
(``bench/retrain.py``). With ``OMP_WAIT_POLICY=PASSIVE`` a waiting thread sleeps at once, which
keeps it within twice its idle time, but each barrier then costs a wake-up: on these data two
XGBoost threads were slower than one. So XGBoost fits on one thread (``ModelConfig.xgb_threads``)
and the forest on two (joblib's threads, which never spin), the fastest idle and within 2x busy.

The passive policy stays the default for any OpenMP team that is left (a larger
``xgb_threads``). libgomp reads it once, when the library loads, so it is put into the
process's environment before scikit-learn or XGBoost is imported (this package's ``__init__``
does it, and every model library import of the project is below this package) and into the
retraining process's environment. A user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is
left as it is.
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
