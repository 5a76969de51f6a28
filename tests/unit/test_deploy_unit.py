"""The systemd unit as systemd itself reads it (``systemd-analyze verify``, where installed)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "paper-trader.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_systemd_reads_every_line_of_the_unit(tmp_path: Path) -> None:
    """No key is unknown or in the wrong section (systemd ignores those, with a warning), and
    the unit verifies, its paths pointed at this checkout instead of /opt/paper-trader."""
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/paper-trader", str(ROOT)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, said
    assert "ignoring" not in said, said
    assert "Unknown" not in said, said
