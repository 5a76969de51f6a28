"""Three ``kill -9`` at random moments of a live run with every simulator fault on (the long
campaign of ``make proof`` is ``bench/crash.py``): the same ledger as an uninterrupted run, no
fill lost or doubled, every notification delivered, a possible repeat at most once per kill."""

from pathlib import Path

import pytest
from crash_campaign import Plan, run_campaign, same_ledger

KILLS = 3


@pytest.mark.timeout(1500)  # the repeat window may hold a notification 10 min
def test_kill_9_at_random_moments_gives_the_ledger_of_an_uninterrupted_run(tmp_path: Path) -> None:
    """Each kill is followed by a start on the same database while the market runs on."""
    outcome = run_campaign(tmp_path, Plan(kills=KILLS, seed=3))

    assert len(outcome.kill_moments) == KILLS
    assert int(str(outcome.clean["trades"])) >= 3
    assert same_ledger(tmp_path) == {
        "candles": True,
        "fills": True,
        "decisions": True,
        "ledger notices": True,
    }
    assert outcome.fills[0] == outcome.fills[1]
    assert outcome.crashed["ledger_digest"] == outcome.clean["ledger_digest"]
    assert outcome.crashed["replay_parity"] == {"expected": True, "reasons": {}, "first": []}
    assert all(r.status == "sent" for r in outcome.deliveries)
    assert outcome.possible_repeats <= KILLS
