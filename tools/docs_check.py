"""README's drift checks: ``make docs-check`` (CI runs it as part of ``make test``).

1. **The configuration reference.** README's table between the settings markers is generated
   from ``paper_trader.settings.Settings`` (each setting's name, type, default and the form it
   accepts) and from ``.env.example`` (its sections, and the comment above each setting, which
   says what the setting does). ``--write`` rewrites the table; otherwise a stale one fails.
2. **.env.example** lists every setting of ``Settings`` once (``NAME=value``, or commented out
   as ``# NAME=value``), each under a comment that says what it does, and nothing else; its
   values are valid and are the defaults, except where ``EXAMPLE_VALUES`` says why not.
3. **The benchmark table** in README is the one in ``bench/results.md`` (``bench/results.py``
   writes both from ``bench/results/``), and every ``(#anchor)`` link has its heading.
4. **The recipes.** A fenced ``sh`` block right after a comment ``<!-- docs-check ... -->`` is
   run with ``bash -e -o pipefail`` in a scratch checkout (this one's code, ``.venv`` and files
   linked into an empty directory, so whatever the recipe writes lands there), with no setting
   from this shell's environment and a guard that fails any non-loopback connection
   (``tests/netguard``). Its exit status must be ``exit`` (0) within ``timeout`` seconds (60),
   and its standard output must match the regular expression ``expect``, if given. The blocks
   of one ``session`` run in order in one scratch checkout; sessions run side by side.
   ``cwd=DIR`` runs a block in that directory of the checkout; ``requires=PROGRAM`` skips it
   (saying so) where the program is not installed. Values with spaces go in double quotes.

    .venv/bin/python tools/docs_check.py [--write] [--no-recipes] [--session NAME] [--show]

A new setting in ``Settings`` fails the check until ``.env.example`` has it (with the comment
that says what it does) and ``--write`` has put it in README's table.
"""

# ruff: noqa: T201
# (a command-line tool: it prints its verdict, and runs README's recipes with the PATH's bash)

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr, ValidationError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paper_trader.settings import Settings  # noqa: E402 -- after the checkout is importable
from tools.docs_recipes import (  # noqa: E402
    Outcome,
    recipes,
    run_recipes,
)

README = ROOT / "README.md"
EXAMPLE = ROOT / ".env.example"
BENCH_RESULTS = ROOT / "bench" / "results.md"
BEGIN = "<!-- settings:begin (tools/docs_check.py --write makes this table from Settings and .env.example; edit those, not this) -->"  # noqa: E501
END = "<!-- settings:end -->"
BENCH_BEGIN = "<!-- bench-results:begin"
BENCH_END = "<!-- bench-results:end -->"
# Settings whose value in .env.example is not the default, and why.
EXAMPLE_VALUES = {"SYMBOLS": "the example follows two symbols, the default one"}
_SECTION = re.compile(r"^#\s*---\s*(.+?)\s*-*\s*$")
# NAME=value, or commented out as "# NAME=value" (a value has no space: "# NAME=0 means …" is text)
_KEY = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
_COMMENTED_KEY = re.compile(r"^#\s?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>\S*)$")


# --- .env.example ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ExampleEntry:
    """One setting as ``.env.example`` writes it."""

    name: str
    value: str
    commented: bool
    section: str
    section_note: str  # the comment at the top of its section, ended by a bare "#" line
    meaning: str  # the comment block above it, shared by the settings under one block
    block_head: str  # the first setting under that block (itself, if it is the first)
    line: int


@dataclass(slots=True)
class _Reading:
    """Where ``parse_example`` is in the file."""

    section: str = ""
    note: str = ""
    comment: list[str] = field(default_factory=list)
    head: str = ""
    after_key: bool = False


def parse_example(text: str) -> list[ExampleEntry]:
    """Return the settings of ``.env.example`` in order, with their section and comment."""
    entries: list[ExampleEntry] = []
    at = _Reading()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if (match := _SECTION.match(line)) is not None:
            at = _Reading(section=match[1])
        elif (key := _KEY.match(line) or _COMMENTED_KEY.match(line)) is not None:
            if not at.after_key:
                at.head, at.after_key = key["name"], True
            entries.append(
                ExampleEntry(
                    name=key["name"],
                    value=key["value"],
                    commented=line.startswith("#"),
                    section=at.section,
                    section_note=at.note,
                    meaning=" ".join(at.comment),
                    block_head=at.head,
                    line=number,
                )
            )
        elif line == "#" and at.section and not at.note:
            at.note, at.comment = " ".join(at.comment), []
        elif line.startswith("#") and at.section:
            if at.after_key:
                at.comment, at.after_key = [], False
            at.comment.append(line.lstrip("#").strip())
        elif not line:
            at.comment, at.after_key = [], False
    return entries


def settings_from(values: dict[str, str]) -> Settings:
    """Validate ``NAME -> text`` like ``.env`` is validated; unaffected by this environment.

    Every setting not in ``values`` gets its default: init arguments outrank the environment.
    """
    given = {name.lower(): text for name, text in values.items()}
    for name, info in Settings.model_fields.items():
        given.setdefault(name, info.get_default(call_default_factory=True))
    return Settings(_env_file=None, **given)


def defaults() -> dict[str, str]:
    """Return every setting's default as ``check-config`` shows it (``NAME -> text``)."""
    return settings_from({}).effective()


def example_problems(text: str) -> list[str]:
    """Return what is wrong with ``.env.example`` against ``Settings`` (nothing: [])."""
    entries = parse_example(text)
    names = [e.name for e in entries]
    known = {name.upper() for name in Settings.model_fields}
    problems = [
        f".env.example: {n} is listed twice" for n in sorted(set(names)) if names.count(n) > 1
    ]
    problems += [f".env.example: {n} is not a setting" for n in names if n not in known]
    problems += [f".env.example misses {n}" for n in sorted(known - set(names))]
    problems += [
        f".env.example:{e.line}: {e.name} has no comment above it saying what it does"
        for e in entries
        if e.block_head == e.name and not e.meaning
    ]
    if problems:
        return problems
    try:
        example = settings_from({e.name: e.value for e in entries}).effective()
    except ValidationError as exc:
        return [
            f".env.example is not valid: {error['loc']}: {error['msg']}" for error in exc.errors()
        ]
    default = defaults()
    for entry in entries:
        if example[entry.name] != default[entry.name] and entry.name not in EXAMPLE_VALUES:
            problems.append(
                f".env.example:{entry.line}: {entry.name}={entry.value} is not the default "
                f"{default[entry.name]!r} (change one, or say why in EXAMPLE_VALUES)"
            )
    return problems


# --- the configuration reference -------------------------------------------------------------


_SIMPLE = {
    bool: "boolean",
    int: "integer",
    float: "number",
    Decimal: "decimal",
    str: "text",
    SecretStr: "secret",
    Path: "path",
}


def kind(annotation: Any) -> str:
    """Return a setting's type in a word or two."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        inner = kind(args[0]) if len(args) == 1 else "value"
        return inner if inner == "secret" else f"{inner} or empty"
    if origin is Literal or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        return "choice"
    if origin is list:
        return "list"
    return _SIMPLE.get(annotation, str(annotation))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _default_cell(text: str) -> str:
    if not text:
        return "*(empty)*"
    whole = re.sub(r"^(-?\d+)\.0$", r"\1", text)  # 60.0 seconds read as 60
    return f"`{whole}`"


def reference(example_text: str) -> str:
    """Return the configuration reference: one table per section of ``.env.example``."""
    fields = {name.upper(): info for name, info in Settings.model_fields.items()}
    default = defaults()
    lines: list[str] = []
    section = None
    for entry in parse_example(example_text):
        if entry.name not in fields:
            continue
        if entry.section != section:
            section = entry.section
            note = f": {entry.section_note}" if entry.section_note else ""
            lines += ["", f"**{section}**{note}", ""]
            lines += [
                "| setting | type | default | accepts | what it does |",
                "|---|---|---|---|---|",
            ]
        info = fields[entry.name]
        meaning = entry.meaning if entry.block_head == entry.name else f"see `{entry.block_head}`"
        cells = (
            f"`{entry.name}`",
            kind(info.annotation),
            _default_cell(default[entry.name]),
            _cell(info.description or ""),
            _cell(meaning),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines).strip()


def _between(text: str, begin: str, end: str) -> tuple[int, int] | None:
    start = text.find(begin)
    stop = text.find(end, start + 1)
    if start < 0 or stop < 0:
        return None
    return text.index("\n", start) + 1, stop


def reference_problems(readme_text: str, example_text: str) -> list[str]:
    """Return what is wrong with README's configuration reference (nothing: [])."""
    span = _between(readme_text, BEGIN, END)
    if span is None:
        return [f"README.md has no configuration reference between {BEGIN[:20]}… and {END}"]
    if readme_text[span[0] : span[1]].strip() != reference(example_text):
        return ["README.md's configuration reference is stale: run tools/docs_check.py --write"]
    return []


def write_reference(readme: Path, example_text: str) -> bool:
    """Rewrite README's configuration reference; return whether it changed."""
    text = readme.read_text(encoding="utf-8")
    span = _between(text, BEGIN, END)
    if span is None:
        raise SystemExit(f"{readme} has no settings markers ({BEGIN[:20]}… and {END})")
    new = text[: span[0]] + reference(example_text) + "\n" + text[span[1] :]
    readme.write_text(new, encoding="utf-8")
    return new != text


def bench_problems(readme_text: str, results_text: str) -> list[str]:
    """Return what differs between README's benchmark table and bench/results.md's."""
    span = _between(readme_text, BENCH_BEGIN, BENCH_END)
    if span is None:
        return ["README.md has no benchmark table between its bench-results markers"]
    ours = [line for line in readme_text[span[0] : span[1]].splitlines() if line.startswith("|")]
    theirs = [line for line in results_text.splitlines() if line.startswith("|")]
    if ours != theirs:
        return ["README.md's benchmark table differs from bench/results.md: run bench/results.py"]
    return []


def anchor_problems(readme_text: str) -> list[str]:
    """Return README's links to a ``#heading`` that no heading makes (GitHub's anchors)."""
    prose = re.sub(r"(?ms)^\s*```.*?^\s*```", "", readme_text)
    anchors = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"(?m)^#{1,6} (.+)$", prose)
    }
    links = re.findall(r"\]\(#([^)\s]+)\)", prose)
    return [
        f"README.md links to #{link}, which no heading makes"
        for link in links
        if link not in anchors
    ]


def static_problems(readme_text: str, example_text: str) -> list[str]:
    """Return every problem the checks that run nothing find."""
    results = BENCH_RESULTS.read_text(encoding="utf-8") if BENCH_RESULTS.exists() else ""
    return (
        example_problems(example_text)
        + reference_problems(readme_text, example_text)
        + bench_problems(readme_text, results)
        + anchor_problems(readme_text)
    )


def main(argv: list[str] | None = None) -> int:
    """Check (or ``--write``) README's generated parts, then run its recipes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the settings reference")
    parser.add_argument("--no-recipes", action="store_true", help="run no recipe")
    parser.add_argument("--session", action="append", help="run only these sessions' recipes")
    parser.add_argument("--show", action="store_true", help="print every recipe's output")
    args = parser.parse_args(argv)
    started = time.monotonic()
    example_text = EXAMPLE.read_text(encoding="utf-8")
    if args.write and write_reference(README, example_text):
        print("README.md: the configuration reference was rewritten")
    readme_text = README.read_text(encoding="utf-8")
    problems = static_problems(readme_text, example_text)
    for problem in problems:
        print(f"docs-check: {problem}", file=sys.stderr)
    failed = bool(problems)
    if not args.no_recipes:
        found = [r for r in recipes(readme_text) if not args.session or r.session in args.session]
        for outcome in run_recipes(found):
            failed |= not outcome.ok
            _report(outcome, show=args.show)
    verdict = "failed" if failed else "ok"
    print(f"docs-check: {verdict} in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


def _report(outcome: Outcome, *, show: bool) -> None:
    status = "ok  " if outcome.ok else "FAIL"
    note = f": {outcome.note}" if outcome.note else ""
    print(f"docs-check: {status} {outcome.recipe.name} {outcome.seconds:.1f} s{note}")
    if show or not outcome.ok:
        print(outcome.output, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
