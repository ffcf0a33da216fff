"""The scripts' command lines: `python scripts/<x>.py --help` works for every script."""

import ast
import os
import subprocess
import sys

import pytest

from .conftest import REPO

# every script a user can run (_retention_path.py is the scripts' import helper)
SCRIPTS = sorted(p for p in (REPO / "scripts").glob("*.py") if not p.name.startswith("_"))


def test_every_script_is_checked():
    assert len(SCRIPTS) >= 11 and REPO / "scripts" / "compare_samplers.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_the_usage_and_what_the_script_does(script):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"usage: {script.name}"), proc.stdout[:500]
    assert "-h, --help" in proc.stdout
    # the first line of the script's docstring is its description
    summary = ast.get_docstring(ast.parse(script.read_text())).splitlines()[0]
    assert " ".join(summary.split()) in " ".join(proc.stdout.split()), proc.stdout[:1000]
    assert "Traceback" not in proc.stderr, proc.stderr
