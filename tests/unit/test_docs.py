"""README, .env.example and Settings agree (tools/docs_check.py; `make docs-check` also runs
README's recipes), and the docs check itself tells a good recipe from a bad one."""

import re
from pathlib import Path
from typing import Any

import pytest

from paper_trader.settings import Settings, load_settings
from tools import docs_check, docs_recipes

README = docs_check.README.read_text(encoding="utf-8")
EXAMPLE = docs_check.EXAMPLE.read_text(encoding="utf-8")


def test_env_example_lists_every_setting_once_with_its_default() -> None:
    """Every field of Settings is in .env.example, nothing else is, and each value is valid
    and the default (SYMBOLS excepted, with its reason)."""
    assert docs_check.example_problems(EXAMPLE) == []
    names = {entry.name for entry in docs_check.parse_example(EXAMPLE)}
    assert names == {name.upper() for name in Settings.model_fields}


def test_env_example_copied_to_dot_env_is_a_valid_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp .env.example .env` gives settings that load, read as the daemon reads them."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    env = tmp_path / ".env"
    env.write_text(EXAMPLE, encoding="utf-8")
    settings = load_settings(env, required=True)
    assert settings.symbols == ["BTC-USDT", "ETH-USDT"]
    assert settings.effective()["DB_PATH"] == "paper_trader.db"


def test_readme_settings_table_is_the_one_settings_and_env_example_make() -> None:
    """The table between README's settings markers is up to date (--write remakes it)."""
    assert docs_check.reference_problems(README, EXAMPLE) == []
    table = README[README.index(docs_check.BEGIN) : README.index(docs_check.END)]
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in table


def test_a_stale_settings_table_or_a_missing_setting_is_reported() -> None:
    """Change a default's text in README, or drop a setting from .env.example: a problem each."""
    stale = README.replace(
        "| `WARMUP_CANDLES` | integer | `1000` |", "| `WARMUP_CANDLES` | integer | `500` |"
    )
    assert stale != README
    assert docs_check.reference_problems(stale, EXAMPLE) != []
    dropped = re.sub(r"(?m)^WARMUP_CANDLES=.*\n", "", EXAMPLE)
    assert ".env.example misses WARMUP_CANDLES" in docs_check.example_problems(dropped)
    renamed = EXAMPLE.replace("WARMUP_CANDLES=1000", "WARMUP_CANDLES=1000\nWARMUP_CANDLE=1000")
    assert ".env.example: WARMUP_CANDLE is not a setting" in docs_check.example_problems(renamed)
    bare = re.sub(r"(?m)^# Exchange to read .*\n", "", EXAMPLE)
    assert any("EXCHANGE has no comment" in p for p in docs_check.example_problems(bare))
    changed = EXAMPLE.replace("WARMUP_CANDLES=1000", "WARMUP_CANDLES=900")
    assert any(
        "WARMUP_CANDLES=900 is not the default" in p for p in docs_check.example_problems(changed)
    )


def test_a_commented_setting_counts_and_a_comment_naming_one_does_not() -> None:
    """`# NAME=value` is a setting left at its default; `# NAME=0 picks …` is prose."""
    text = "# --- Ports ---\n# Where.\n# HEALTH_PORT=8766\n# HEALTH_PORT=0 picks any free port.\n"
    [entry] = docs_check.parse_example(text)
    assert (entry.name, entry.value, entry.commented, entry.meaning) == (
        "HEALTH_PORT",
        "8766",
        True,
        "Where.",
    )


def test_readme_benchmark_table_is_bench_results_md() -> None:
    """bench/results.py writes both; neither was edited by hand."""
    results = docs_check.BENCH_RESULTS.read_text(encoding="utf-8")
    assert docs_check.bench_problems(README, results) == []


def test_readme_links_reach_headings_and_a_broken_one_is_reported() -> None:
    """Every ``](#anchor)`` of README names a heading; a renamed heading would be caught."""
    assert docs_check.anchor_problems(README) == []
    broken = README + "\nSee [nowhere](#no-such-heading).\n"
    assert docs_check.anchor_problems(broken) == [
        "README.md links to #no-such-heading, which no heading makes"
    ]


def test_readme_recipes_are_well_formed_and_cover_the_quick_start() -> None:
    """Every marker is followed by an sh block; the three trials and the log recipes run."""
    found = docs_recipes.recipes(README)
    sessions = {recipe.session for recipe in found}
    assert {"config", "backtest", "simulator"} <= sessions
    scripts = "\n".join(recipe.script for recipe in found)
    for command in ("check-config", " replay ", " train ", " run", " report", "jq ", "sqlite3 "):
        assert command in scripts
    assert "python run_paper_trader.py" not in README.replace(
        ".venv/bin/python run_paper_trader.py", ""
    )


def _recipe(script: str, **attributes: Any) -> docs_recipes.Recipe:
    return docs_recipes.Recipe(line=1, script=script, **attributes)


def test_a_recipe_passes_on_its_exit_status_and_expected_output(tmp_path: Path) -> None:
    """Exit 0 and a matching line: ok; another status or no match: a failure saying which."""
    ok = docs_recipes.run_recipe(
        _recipe("echo configuration ok\n", expect="^configuration ok$"), tmp_path
    )
    assert ok.ok, ok.output
    wrong_exit = docs_recipes.run_recipe(_recipe("false\necho never\n"), tmp_path)
    assert not wrong_exit.ok
    assert wrong_exit.note == "exit 1, expected 0"
    expected_exit = docs_recipes.run_recipe(_recipe("exit 2\n", exit=2), tmp_path)
    assert expected_exit.ok
    no_match = docs_recipes.run_recipe(_recipe("echo something else\n", expect="^trades"), tmp_path)
    assert not no_match.ok
    assert "does not match" in no_match.note


def test_a_recipe_that_overruns_is_stopped_with_what_it_left_running(tmp_path: Path) -> None:
    """Past its timeout the recipe and its background jobs are stopped; it fails saying so."""
    pid_file = tmp_path / "pid"
    script = f"sleep 60 &\necho $! > {pid_file}\nsleep 60\n"
    outcome = docs_recipes.run_recipe(_recipe(script, timeout=1.0), tmp_path)
    assert not outcome.ok
    assert outcome.note == "did not finish within 1 s"
    background = int(pid_file.read_text())
    assert not Path(f"/proc/{background}").exists() or "zombie" in _state(background)


def _state(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return next(line for line in status.splitlines() if line.startswith("State:"))
