"""Datasets, models, training, the model registry and live prediction.

OpenMP reads its wait policy once, when scikit-learn or XGBoost first loads it: the default
(``threads.py``) is set here, before any module of this package imports them.
"""

from paper_trader.prediction.threads import apply_thread_defaults

apply_thread_defaults()
