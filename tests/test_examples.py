"""Every script in examples/ runs with --fast (tiny settings) in a fresh process.

The list is taken from the folder, so new examples are picked up automatically. Examples that read
real market data (they accept ``--data-dir``) are skipped with a reason when ``../shared/data`` is
absent.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_there_are_examples():
    assert EXAMPLES, "examples/ has no script"


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_fast(script, tmp_path):
    text = script.read_text()
    head = text.split('"""')[1] if text.startswith('"""') else ""
    assert head.strip(), f"{script.name} needs a header docstring saying what it shows"
    assert "--fast" in text, f"{script.name} must accept --fast"
    if "--data-dir" in text and not SHARED_DATA.is_dir():
        pytest.skip(f"{script.name} reads real data from {SHARED_DATA}, which is absent")
    proc = subprocess.run([sys.executable, str(script), "--fast"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"


def test_ice_example_without_its_data_says_so_in_one_line(tmp_path):
    """No traceback: one line naming the missing folder and --data-dir (exit 1)."""
    script = next(p for p in EXAMPLES if p.name == "ice_corporate_indices.py")
    proc = subprocess.run([sys.executable, str(script), "--fast", "--data-dir",
                           str(tmp_path / "nowhere")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"ice_corporate_indices.py: error: data folder {tmp_path / 'nowhere'} not found; pass "
        "--data-dir FOLDER holding corp_tr_returns_monthly.csv and "
        "goyal_welch_bond_factors_monthly.csv")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "corp_tr_returns_monthly.csv").write_text("date\n")
    proc = subprocess.run([sys.executable, str(script), "--fast", "--data-dir",
                           str(tmp_path / "half")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "goyal_welch_bond_factors_monthly.csv not found; pass --data-dir" in proc.stderr
