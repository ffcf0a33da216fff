"""The conda environments of the rules (envs/*.yaml, for --sdm conda): each lists every
package that its rules' scripts import (directly or through the retention package), at the
version the tests ran with."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

#: import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}
#: imported only where they exist (try/except ImportError) or by the workflow engine itself
OPTIONAL = {"snakemake", "pynvml"}


def rule_envs_and_scripts() -> dict[str, set[str]]:
    """env file -> the scripts of the rules that use it (rules of workflow/rules/*.smk;
    ``use rule A as B with:`` inherits A's environment and script)."""
    blocks: dict[str, dict] = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [m for m in re.finditer(r"^\s*(?:rule\s*(\w*)\s*:|use rule (\w+) as (\w+))", text, re.M)]
        for k, m in enumerate(starts):
            body = text[m.end() : starts[k + 1].start() if k + 1 < len(starts) else len(text)]
            conda = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", body)
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", body)
            name = m.group(3) or m.group(1) or f"{smk.name}:{m.start()}"
            entry = {
                "conda": conda and conda.group(1),
                "script": script and script.group(1),
                "parent": m.group(2),
            }
            blocks[name] = entry
    out: dict[str, set[str]] = {}
    for entry in blocks.values():
        while entry.get("parent") and not (entry["conda"] and entry["script"]):
            parent = blocks[entry["parent"]]
            entry = {
                "conda": entry["conda"] or parent["conda"],
                "script": entry["script"] or parent["script"],
                "parent": parent.get("parent"),
            }
        if entry["script"]:
            assert entry["conda"], f"a rule running {entry['script']} has no conda environment"
            out.setdefault(Path(entry["conda"]).name, set()).add(Path(entry["script"]).name)
    return out


LOADED = """
import importlib.util, json, sys
sys.path[:0] = [sys.argv[2], sys.argv[2] + "/scripts"]
spec = importlib.util.spec_from_file_location("script_under_test", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
mods = list(sys.modules.items())
ours = (m for n, m in mods if n.split(".")[0] == "retention" and getattr(m, "__file__", None))
print(json.dumps(sorted({m.__file__ for m in ours})))
"""


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of the non-package modules a file imports, at module level or in
    its functions (a function of a loaded module may run in the job)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party(script: Path) -> set[str]:
    """The distributions a script needs: the imports of the script and of every retention
    module it loads (found by loading it; a package module imported only inside a
    function, on an optional path such as a standalone mode, is not followed)."""
    proc = subprocess.run(
        [sys.executable, "-c", LOADED, str(script), str(REPO)], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"loading {script.name} failed:\n{proc.stderr[-2000:]}"
    files = [script, *map(Path, json.loads(proc.stdout.strip().splitlines()[-1]))]
    names = set().union(*(third_party_imports(f) for f in files))
    return {DISTRIBUTION.get(n, n) for n in names - set(sys.stdlib_module_names) - OPTIONAL - {"retention"}}


def env_packages(env: Path) -> dict[str, str]:
    """distribution -> the version spec an environment file pins it at."""
    spec = yaml.safe_load(env.read_text())
    out = {}
    for dep in spec["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            if item.startswith("-e ${RETENTION_WORKFLOW}"):  # the package itself (test below)
                continue
            m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(?:==?\s*([^\s,]+))?", item)
            out[m.group(1).lower().replace("_", "-")] = m.group(2) or ""
    return out


ENVS = rule_envs_and_scripts()


def test_every_rule_with_a_script_has_an_environment():
    assert set(ENVS) == {p.name for p in (REPO / "envs").glob("*.yaml")}, ENVS


@pytest.mark.parametrize("env", sorted(ENVS))
def test_environment_lists_what_its_scripts_import_at_the_tested_versions(env):
    packages = env_packages(REPO / "envs" / env)
    for script in sorted(ENVS[env]):
        for dist in sorted(third_party(REPO / "scripts" / script)):
            key = dist.lower().replace("_", "-")
            assert key in packages, f"envs/{env} lacks {dist}, which scripts/{script} imports"
    for dist, pinned in packages.items():
        if dist in ("python", "pip"):
            continue
        assert pinned, f"envs/{env}: {dist} has no pinned version"
        assert pinned == version(dist), f"envs/{env}: {dist} pinned at {pinned}, tested with {version(dist)}"


@pytest.mark.parametrize("env", sorted(ENVS))
def test_every_environment_installs_the_workflows_package_from_its_folder(env):
    """No script patches sys.path: each environment installs the package (editable) from the
    folder common.smk names, with the extra the training needs where its scripts train."""
    spec = yaml.safe_load((REPO / "envs" / env).read_text())
    pip = [item for dep in spec["dependencies"] if isinstance(dep, dict) for item in dep.get("pip", [])]
    wanted = "-e ${RETENTION_WORKFLOW}" + ("[train]" if env == "torch.yaml" else "")
    assert wanted in pip, pip
    common = (REPO / "workflow/rules/common.smk").read_text()
    assert re.search(r"os\.environ\.update\(\s*RETENTION_WORKFLOW=WORKFLOW_DIR\s*\)", common)
