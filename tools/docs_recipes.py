"""README's runnable recipes, for ``tools/docs_check.py`` (its docstring says how one is marked):
each ``sh`` block after a ``<!-- docs-check ... -->`` comment, run in a scratch checkout with no
setting from the caller's environment, under the loopback-only guard, with a timeout.
"""

# ruff: noqa: S603, S607
# (it runs README's recipes with the PATH's bash)

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paper_trader.settings import Settings  # noqa: E402 -- after the checkout is importable

# What a scratch checkout links from this one: the code, its virtualenv, the files recipes read.
CHECKOUT = (
    ".env.example",
    ".venv",
    "Makefile",
    "README.md",
    "bench",
    "constraints.txt",
    "deploy",
    "docs",
    "paper_trader",
    "pyproject.toml",
    "requirements-dev.txt",
    "requirements.txt",
    "run_paper_trader.py",
)
NETGUARD = ROOT / "tests" / "netguard"
_MARKER = re.compile(r"^<!--\s*docs-check\b(.*?)-->\s*$")


# --- the recipes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipe:
    """A runnable block of README."""

    line: int
    script: str
    session: str = "main"
    timeout: float = 60.0
    exit: int = 0
    expect: str | None = None
    cwd: str = "."
    requires: str | None = None

    @property
    def name(self) -> str:
        """Return where it is: ``README.md:LINE (session)``."""
        return f"README.md:{self.line} ({self.session})"


@dataclass(slots=True)
class Outcome:
    """How one recipe went."""

    recipe: Recipe
    ok: bool
    seconds: float = 0.0
    note: str = ""
    output: str = field(default="", repr=False)


def recipes(readme_text: str) -> list[Recipe]:
    """Return README's runnable blocks in order; raise ``ValueError`` on a malformed marker."""
    lines = readme_text.splitlines()
    found = []
    for index, line in enumerate(lines):
        if (match := _MARKER.match(line.strip())) is None:
            continue
        if index + 1 >= len(lines) or lines[index + 1].strip() != "```sh":
            raise ValueError(f"README.md:{index + 1}: a docs-check marker needs a ```sh block next")
        body = list(_until_fence(lines[index + 2 :]))
        found.append(
            Recipe(
                line=index + 3, script="\n".join(body) + "\n", **_attributes(match[1], index + 1)
            )
        )
    return found


def _until_fence(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        if line.strip() == "```":
            return
        yield line


def _attributes(text: str, line: int) -> dict[str, Any]:
    given = dict(part.split("=", 1) for part in shlex.split(text) if "=" in part)
    unknown = set(given) - {"session", "timeout", "exit", "expect", "cwd", "requires"}
    if unknown:
        raise ValueError(f"README.md:{line}: unknown docs-check attributes {sorted(unknown)}")
    converted: dict[str, Any] = dict(given)
    if "timeout" in given:
        converted["timeout"] = float(given["timeout"])
    if "exit" in given:
        converted["exit"] = int(given["exit"])
    return converted


def scratch_checkout(into: Path) -> Path:
    """Link this checkout's code and files into an empty directory; return it."""
    for name in CHECKOUT:
        if (ROOT / name).exists():
            (into / name).symlink_to(ROOT / name)
    return into


def recipe_environment() -> dict[str, str]:
    """Return this environment without any setting, with the loopback-only guard."""
    settings = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    for name in ("NOTIFY_SOCKET", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(NETGUARD)
    return env


def run_recipe(recipe: Recipe, checkout: Path) -> Outcome:
    """Run one recipe in ``checkout`` and judge it."""
    if recipe.requires and shutil.which(recipe.requires) is None:
        return Outcome(recipe=recipe, ok=True, note=f"skipped: {recipe.requires} is not installed")
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", recipe.script],
            cwd=checkout / recipe.cwd,
            env=recipe_environment(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        code = _wait(process, recipe.timeout)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    seconds = time.monotonic() - started
    return _judge(recipe, code, stdout, stderr, seconds)


def _wait(process: subprocess.Popen[str], timeout: float) -> int | None:
    """Wait for the recipe; stop it and whatever it left running; None if it timed out."""
    try:
        code: int | None = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (process.poll() is None or _running(process.pid)):
            time.sleep(0.1)
    process.wait()
    return code


def _running(pgid: int) -> bool:
    """Return whether a process of the group still runs (zombies do not: nobody may reap them)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _judge(recipe: Recipe, code: int | None, stdout: str, stderr: str, seconds: float) -> Outcome:
    output = f"--- stdout\n{stdout[-4000:]}\n--- stderr\n{stderr[-4000:]}"
    if code is None:
        note = f"did not finish within {recipe.timeout:g} s"
    elif code != recipe.exit:
        note = f"exit {code}, expected {recipe.exit}"
    elif recipe.expect and re.search(recipe.expect, stdout, re.MULTILINE) is None:
        note = f"its output does not match {recipe.expect!r}"
    else:
        return Outcome(recipe=recipe, ok=True, seconds=seconds, output=output)
    return Outcome(recipe=recipe, ok=False, seconds=seconds, note=note, output=output)


def run_session(session: list[Recipe]) -> list[Outcome]:
    """Run one session's recipes in order in a fresh scratch checkout; stop at a failure."""
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix=f"docs-check-{session[0].session}-") as tmp:
        checkout = scratch_checkout(Path(tmp))
        for recipe in session:
            outcome = run_recipe(recipe, checkout)
            outcomes.append(outcome)
            if not outcome.ok:
                break
    return outcomes


def run_recipes(found: list[Recipe]) -> list[Outcome]:
    """Run every session side by side; return the outcomes in README's order."""
    sessions: dict[str, list[Recipe]] = {}
    for recipe in found:
        sessions.setdefault(recipe.session, []).append(recipe)
    with ThreadPoolExecutor(max_workers=max(1, len(sessions))) as pool:
        results = pool.map(run_session, sessions.values())
        return sorted((o for outs in results for o in outs), key=lambda o: o.recipe.line)


# --- the command ----------------------------------------------------------------------------
