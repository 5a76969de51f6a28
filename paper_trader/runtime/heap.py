"""The garbage collector after the warm-up: what is alive then stays, so it is never scanned.

After start-up the heap holds some 300,000 long-lived objects (modules, the models, the warm-up's
feature and ledger state). Every full collection walks all of them: at 100 symbols one took
over 100 ms of the event loop, the worst decision latency there was. ``freeze_warm_heap``
collects once and moves every survivor to the permanent generation (``gc.freeze``), so later
collections see only what the run allocates after it. A frozen object that later becomes
cyclic garbage is never reclaimed; the warm-up's objects live for the whole run anyway.
"""

import gc


def freeze_warm_heap() -> int:
    """Collect, then freeze every object alive now; return how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw_heap() -> None:
    """Give the frozen objects back to the collector (the run is over: in-process runs, such as
    the tests', then leave nothing behind)."""
    gc.unfreeze()
