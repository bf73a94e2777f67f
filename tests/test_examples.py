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
