"""The systemd units as systemd itself reads them (``systemd-analyze verify``, where installed),
and the template unit kept in step with the single one."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "paper-trader.service"
TEMPLATE = ROOT / "deploy" / "paper-trader@.service"


def _verify(unit: Path, name: str) -> str:
    """Run ``systemd-analyze verify`` on ``name`` in the unit's directory; return what it said."""
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit.parent / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, said
    return said


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
@pytest.mark.parametrize(
    ("source", "name"),
    [(UNIT, UNIT.name), (TEMPLATE, "paper-trader@btc.service")],
    ids=["unit", "template instance"],
)
def test_systemd_reads_every_line_of_the_unit(source: Path, name: str, tmp_path: Path) -> None:
    """No key is unknown or in the wrong section (systemd ignores those, with a warning), and
    the unit verifies (the template as an instance of it), its paths pointed at this checkout
    instead of /opt/paper-trader."""
    unit = tmp_path / source.name
    unit.write_text(source.read_text(encoding="utf-8").replace("/opt/paper-trader", str(ROOT)))
    said = _verify(unit, name)
    assert "ignoring" not in said, said
    assert "Unknown" not in said, said


def _settings(unit: Path) -> list[str]:
    """Return the unit's key=value lines, comments and section headers left out."""
    lines = unit.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if "=" in line and not line.startswith("#")]


def test_the_template_is_the_unit_with_one_directory_and_settings_file_per_instance() -> None:
    """Every line of the single unit is in the template, with /var/lib/paper-trader/%i for
    /var/lib/paper-trader and /etc/paper-trader/%i.env for /etc/paper-trader.env (the
    description names the instance); so a hardening or restart change cannot miss one."""
    expected = [
        line.replace("/var/lib/paper-trader", "/var/lib/paper-trader/%i").replace(
            "/etc/paper-trader.env", "/etc/paper-trader/%i.env"
        )
        for line in _settings(UNIT)
    ]
    template = _settings(TEMPLATE)
    description = [line for line in template if line.startswith("Description=")]
    assert description == ["Description=paper-trader %i: paper trading on live exchange data"]
    assert [line for line in template if line not in description] == [
        line for line in expected if not line.startswith("Description=")
    ]
