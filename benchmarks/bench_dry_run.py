"""Parse cost: a no-op `snakemake -n` of the workflow against a two-rule Snakefile.

In one run, in the same environment (the same Python and Snakemake), alternately:
  (a) `snakemake -n` of a two-rule Snakefile whose output exists (bare Snakemake:
      start-up, parsing, one job's DAG);
  (b) `snakemake -n` of this workflow on a finished run (nothing to do: the config
      check, the DAG of every job, their provenance records).
Prints every time, the medians and (b) - (a): what the workflow adds to a dry run
(issue 21: at most 1 s). The work directory is built first when anything is left to
do (the demo: minutes). One more run of each under `python -X importtime` says which
heavy modules (torch, timm, ...) the workflow's dry run imports beyond bare Snakemake.

    python benchmarks/bench_dry_run.py                        # the demo, in results/bench_dry_run
    python benchmarks/bench_dry_run.py --workdir DIR --configfile config.yaml config/demo.yaml \
        --repeat 5 --cores 2 [--targets FILE ...] [--snakefile ../main/Snakefile]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TWO_RULES = """rule all:
    input:
        "b.txt",


rule b:
    output:
        "b.txt",
    shell:
        "touch {output}"
"""


def workflow_cmd(args, *extra: str) -> list[str]:
    return [
        *SNAKEMAKE,
        "-s",
        str(args.snakefile),
        "-d",
        str(args.workdir),
        *extra,
        *args.targets,
        "--configfile",
        *map(str, args.configfile),
    ]


def run(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc


def build(args) -> None:
    """Run the workflow to the end in the work directory, if anything is left to do."""
    _, proc = run(workflow_cmd(args, "-n"), args.workdir)
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return
    print(f"building {args.workdir} first (--cores {args.cores}) ...", flush=True)
    seconds, _ = run(workflow_cmd(args, "--cores", str(args.cores)), args.workdir)
    print(f"built in {seconds:.0f} s", flush=True)


HEAVY = ("torch", "torchvision", "timm", "pandas", "numpy", "scipy", "matplotlib")


def imported(cmd: list[str], cwd: Path) -> set[str]:
    """The top-level names of the modules ``cmd`` (a python command) imports."""
    _, proc = run([cmd[0], "-X", "importtime", *cmd[1:]], cwd)
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=REPO / "results" / "bench_dry_run")
    parser.add_argument(
        "--configfile", type=Path, nargs="+", default=[REPO / "config.yaml", REPO / "config" / "demo.yaml"]
    )
    parser.add_argument(
        "--targets", nargs="*", default=[], help="build and dry-run these only (default: all)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed dry runs of each (medians reported)")
    parser.add_argument("--cores", type=int, default=2, help="for building the work directory")
    parser.add_argument(
        "--snakefile",
        type=Path,
        default=REPO / "Snakefile",
        help="another checkout's Snakefile, to measure it the same way (a baseline)",
    )
    args = parser.parse_args()
    args.snakefile = args.snakefile.resolve()
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.configfile = [p.resolve() for p in args.configfile]
    build(args)
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp)
        (bare / "Snakefile").write_text(TWO_RULES)
        run([*SNAKEMAKE, "--cores", "1", "-q"], bare)
        times = {"bare": [], "workflow": []}
        for _ in range(args.repeat):  # alternately, so that both see the same machine load
            times["bare"].append(run([*SNAKEMAKE, "-n"], bare)[0])
            seconds, proc = run(workflow_cmd(args, "-n"), args.workdir)
            if "Nothing to be done" not in proc.stdout + proc.stderr:
                sys.exit(f"the workflow in {args.workdir} is not finished: the dry run has jobs to do")
            times["workflow"].append(seconds)
        extra = imported(workflow_cmd(args, "-n"), args.workdir) - imported([*SNAKEMAKE, "-n"], bare)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"snakemake {run([*SNAKEMAKE, '--version'], REPO)[1].stdout.strip()}, python "
        f"{sys.version.split()[0]}, "
        f"{args.repeat} dry runs each, alternately"
    )
    print(
        f"(a) two-rule Snakefile, nothing to do:  median {median['bare']:.2f} s  "
        f"({', '.join(f'{t:.2f}' for t in times['bare'])})"
    )
    print(
        f"(b) this workflow, nothing to do:       median {median['workflow']:.2f} s  "
        f"({', '.join(f'{t:.2f}' for t in times['workflow'])})"
    )
    print(f"(b) - (a): {median['workflow'] - median['bare']:.2f} s (target: at most 1 s)")
    heavy = [name for name in HEAVY if name in extra]
    print(
        f"modules the workflow's dry run imports beyond bare Snakemake: {len(extra)}, of them "
        f"{', '.join(heavy) if heavy else 'none of ' + ', '.join(HEAVY)}"
    )


if __name__ == "__main__":
    main()
