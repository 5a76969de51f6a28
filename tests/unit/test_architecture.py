"""The parts of DESIGN.md's table import only what the table lets them.

An AST walk of every module under ``paper_trader/`` (imports under ``TYPE_CHECKING`` and inside
functions count too): each import of the project is resolved to the part it belongs to and
checked against the importing part's allowance. A new loose module, or a part the table does not
know, fails as well, so the layout cannot drift without this file saying so.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "paper_trader"

# What every async part may use; the pure core (domain, features, risk, broker, the Trader)
# gets only errors and clock.
SHARED = frozenset({"errors", "clock", "root"})
INFRA = SHARED | {"runtime"}
PURE_TRADING = frozenset({"risk", "broker", "domain"}) | SHARED
EVERYTHING = frozenset(
    {
        "domain", "features", "risk", "broker", "trading", "trading.stage", "runtime",
        "exchange", "simulator", "market", "storage", "prediction", "control", "interfaces",
        "monitoring", "settings", "engine", "app", "cli", "errors", "clock", "root",
    }
)  # fmt: skip

# part -> the parts it may import (besides itself)
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset(),
    "errors": frozenset(),
    "clock": frozenset(),
    "root": frozenset(),
    "entry": frozenset({"cli"}),
    "features": frozenset({"domain"}) | SHARED,
    "risk": frozenset({"domain"}) | SHARED,
    "broker": frozenset({"domain"}) | SHARED,
    "trading": PURE_TRADING,
    "trading.stage": PURE_TRADING | {"trading", "features", "storage", "runtime"},
    "runtime": frozenset({"domain"}) | SHARED,
    "exchange": frozenset({"domain"}) | INFRA,
    "simulator": frozenset({"domain", "market"}) | INFRA,
    "market": frozenset({"domain"}) | INFRA,
    "storage": frozenset({"domain"}) | INFRA,
    "prediction": frozenset({"features", "domain"}) | INFRA,
    "control": frozenset({"trading", "trading.stage", "storage", "risk", "broker", "domain"})
    | INFRA,
    "interfaces": frozenset({"control", "domain"}) | INFRA,
    "monitoring": EVERYTHING - {"app", "cli"},
    "settings": frozenset({"domain"}) | SHARED,
    "engine": frozenset({"features", "market", "prediction", "trading", "trading.stage", "domain"})
    | INFRA,
    "app": EVERYTHING,
    "cli": EVERYTHING,
}
ADAPTERS = ("exchange", "storage", "interfaces", "simulator")
LOOSE = {"errors", "clock", "settings", "engine", "__init__", "__main__"}


@dataclass(frozen=True)
class Import:
    """One import of the project: who imports what, and where."""

    importer: str  # dotted module name below paper_trader, e.g. "broker.fills"
    imported: str  # dotted module name below paper_trader ("" for the package itself)
    line: int


def part_of(module: str) -> str:
    """Return the part a module (dotted, below ``paper_trader``) belongs to."""
    if module == "__main__":
        return "entry"
    if module in {"", "__init__"}:
        return "root"
    head = module.split(".", maxsplit=1)[0]
    if module == "trading.stage":
        return "trading.stage"
    return head


def module_name(path: Path, package: Path) -> str:
    """Return ``path``'s dotted module name below ``package`` ("" for its ``__init__``)."""
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool) -> Iterator[tuple[str, int]]:
    """Yield (module below paper_trader, line) for each import of the project in ``source``."""
    here = module.split(".") if module else []
    if not is_package:
        here = here[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                names = [
                    "paper_trader." + ".".join([*base, *([node.module] if node.module else [])])
                ]
            else:
                names = [node.module or ""]
            if names[0] in {"paper_trader", "paper_trader."}:  # from paper_trader import x
                names = [f"paper_trader.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "paper_trader" or name.startswith("paper_trader."):
                yield name.removeprefix("paper_trader").removeprefix("."), node.lineno


def project_imports(package: Path) -> list[Import]:
    """Every import of the project by every module of ``package``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        source = path.read_text(encoding="utf-8")
        for imported, line in imports_of(source, module, is_package=path.name == "__init__.py"):
            found.append(Import(module, _existing(imported, package), line))
    return found


def _existing(imported: str, package: Path) -> str:
    """Trim ``a.b.name`` to the module it names (``from a import b`` may name a module)."""
    parts = imported.split(".") if imported else []
    while parts and not (
        (package.joinpath(*parts).with_suffix(".py")).is_file()
        or (package.joinpath(*parts) / "__init__.py").is_file()
    ):
        parts.pop()
    return ".".join(parts)


def violations(found: list[Import]) -> list[str]:
    """Say, one line each, which imports break the table."""
    wrong = []
    for item in found:
        mine, theirs = part_of(item.importer), part_of(item.imported)
        if mine == theirs or (mine == "trading.stage" and theirs == "trading"):
            continue
        if theirs not in ALLOWED.get(mine, frozenset()):
            allowed = ", ".join(sorted(ALLOWED.get(mine, frozenset()))) or "nothing"
            wrong.append(
                f"paper_trader/{item.importer.replace('.', '/')} line {item.line} imports "
                f"{item.imported or 'paper_trader'}: {mine} may import only {allowed}"
            )
    return wrong


def test_every_part_imports_only_what_the_table_allows() -> None:
    assert violations(project_imports(PACKAGE)) == []


def test_every_module_lives_in_a_known_part() -> None:
    loose = [p.stem for p in PACKAGE.glob("*.py")]
    folders = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    assert sorted(set(loose) - LOOSE) == []
    assert sorted(set(folders) - set(ALLOWED)) == []


@pytest.mark.parametrize(
    ("importer", "source", "culprit"),
    [
        ("domain/candle.py", "from paper_trader.errors import ConfigError\n", "domain may import"),
        ("broker/fills.py", "from paper_trader.risk.config import ExitConfig\n", "broker may"),
        ("features/dump.py", "from ..market.candle_csv import CandleCsv\n", "features may"),
        ("exchange/feed.py", "import paper_trader.storage.writer\n", "exchange may"),
        ("storage/ops.py", "from paper_trader import interfaces\n", "storage may"),
        ("simulator/server.py", "from paper_trader.exchange import wire\n", "simulator may"),
        ("interfaces/bot.py", "def f():\n    from paper_trader import engine\n", "interfaces may"),
        ("interfaces/feed.py", "from paper_trader.storage import ops\n", "interfaces may"),
        ("control/api.py", "from paper_trader.app.daemon import run_daemon\n", "control may"),
        ("trading/trader.py", "from paper_trader.storage import ops\n", "trading may"),
        ("monitoring/health.py", "from paper_trader.app import daemon\n", "monitoring may"),
    ],
)
def test_the_walk_catches_an_import_the_table_forbids(
    tmp_path: Path, importer: str, source: str, culprit: str
) -> None:
    package = tmp_path / "paper_trader"
    for module in ("errors", "engine", "app/daemon", "market/candle_csv", "risk/config",
                   "storage/writer", "storage/ops", "exchange/wire", "interfaces/x"):  # fmt: skip
        path = package / f"{module}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.touch()
    target = package / importer
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / "__init__.py").touch()
    target.write_text(source)
    found = violations(project_imports(package))
    assert len(found) == 1
    assert culprit in found[0]
    assert f"paper_trader/{importer.removesuffix('.py')} line" in found[0]


def test_an_allowed_import_is_not_reported(tmp_path: Path) -> None:
    package = tmp_path / "paper_trader"
    for module in ("domain/trading", "broker/fills", "errors"):
        path = package / f"{module}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text("")
    (package / "broker/fills.py").write_text(
        "from paper_trader.domain.trading import Fill\nfrom ..errors import ConfigError\n"
    )
    assert violations(project_imports(package)) == []
