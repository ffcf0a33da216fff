"""The SLURM profile (workflow/profiles/slurm) against a real slurmctld (issue 8).

Needs a running cluster: `sudo .ci/slurm-up.sh` starts a one-node one on localhost
(fake GPU through gres). Skipped when `sinfo` is absent or no node is up, unless
RETENTION_SLURM_REQUIRED=1 (CI), where that is a failure.

One run of the demo DAG (reduced grid: digits_lt x {cnn, vit} x seeds {0, 1}, no
sampler) goes through the profile, unchanged except for one test-only line: the first
attempt of one fit_traces job asks for 64 MB, so SLURM kills it for memory and the
retry (the profile's memory for attempt 2) must succeed. While it runs, one fine-tuning job
is requeued with `scontrol requeue` after its second epoch, as a preemption would, and
must resume from its checkpoint. A local run of the same config gives the reference
traces. The tests below check that run from its outputs, the submission log and
slurmctld's record of every job (`scontrol show job`).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(900)]

SNAKEFILE = REPO / "Snakefile"
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.v8+.yaml"
LOCAL_PROFILE = REPO / "workflow" / "profiles" / "default"
CONFIGS = [REPO / "config.yaml", REPO / "config" / "demo.yaml"]
GRID = {"dataset": "digits_lt", "archs": ["cnn", "vit"], "seeds": [0, 1]}
RUNS = [(arch, seed) for arch in GRID["archs"] for seed in GRID["seeds"]]
GPU_RULES = {"finetune", "finetune_budget", "pretrain"}  # every seed group's job is one of these
PREEMPTED = ("cnn", 1)  # the fine-tuning run requeued mid-run
FAILS_ONCE = ("vit", 1)  # the fit_traces job whose first attempt runs out of memory
SLURM_TIMEOUT_S = 720


# ------------------------------------------------------------------ the cluster


def cluster_problem() -> str | None:
    """Why no SLURM cluster can be used here, or None when one is up."""
    if shutil.which("sinfo") is None:
        return "sinfo not found: no SLURM client here (start a local cluster: sudo .ci/slurm-up.sh)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 20 s: slurmctld is not reachable (sudo .ci/slurm-up.sh)"
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s.rstrip("*~#") in ("idle", "mix", "alloc", "comp") for s in states):
        answer = (proc.stdout + proc.stderr).strip()
        return f"SLURM cluster not up (sinfo: {answer!r}); start it: sudo .ci/slurm-up.sh"
    return None


def scontrol_jobs(job_ids) -> dict[str, dict[str, str]]:
    """slurmctld's record of each job (`scontrol show job -o`), as key=value fields."""
    jobs = {}
    for job_id in job_ids:
        out = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            jobs[str(job_id)] = dict(re.findall(r"(\w+)=(\S*)", out.stdout))
    return jobs


def squeue(*args) -> list[list[str]]:
    out = subprocess.run(["squeue", "-h", "--states=all", *args], capture_output=True, text=True)
    return [line.split("|") for line in out.stdout.splitlines() if line.strip()]


# ------------------------------------------------------------------ the runs


def job_env() -> dict[str, str]:
    """The test's environment for snakemake and its jobs: this Python environment's bin
    first on PATH (sbatch exports the environment), no user profile or site settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RETENTION_SLURM_", "SNAKEMAKE_PROFILE", "SLURM_", "SBATCH_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def fit_traces_mem_mb(profile: dict) -> str:
    """The profile's mem_mb expression of fit_traces (its own, else the default)."""
    own = profile["set-resources"].get("fit_traces", {}).get("mem_mb")
    return str(own or profile["default-resources"]["mem_mb"])


def load_profile() -> dict:
    """The SLURM profile as users get it without site settings (a YTE template)."""
    import yte

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("RETENTION_SLURM_")]:
            mp.delenv(key)
        with open(PROFILE) as fh:
            return yte.process_yaml(fh, require_use_yte=True)


def write_profile(folder: Path, profile: dict) -> None:
    """``profile`` plus the one test-only line: the first attempt of the FAILS_ONCE
    fit_traces job asks for 64 MB."""
    profile = copy.deepcopy(profile)
    fit = profile["set-resources"].setdefault("fit_traces", {})
    arch, seed = FAILS_ONCE
    fit["mem_mb"] = (
        f"64 if attempt == 1 and wildcards.arch == '{arch}' and wildcards.seed == '{seed}' "
        f"else ({fit_traces_mem_mb(profile)})"
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.v8+.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))


def traces_path(root: Path, arch: str, seed: int) -> Path:
    return root / f"results/runs/{GRID['dataset']}/{arch}/seed{seed}/traces.npz"


@dataclass
class SlurmRun:
    workdir: Path
    localdir: Path
    returncode: int
    output: str
    seconds: float
    submissions: list[tuple[str, str, str]]  # (slurm job id, rule, wildcards)
    jobs: dict[str, dict[str, str]]  # scontrol record per slurm job id
    preempted_job: str | None
    preempted_after_epoch: int | None
    profile: dict = field(default_factory=dict)
    events: list[str] = field(default_factory=list)


def requeue(job_id: str, events: list[str]) -> None:
    """`scontrol requeue`, then release the job: SLURM holds a requeued job for
    2 minutes (BeginTime = now + 120 s), which only makes the test slower."""
    done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
    if done.returncode != 0:  # e.g. it ended just before
        events.append(f"scontrol requeue {job_id} failed: {done.stderr.strip()}")
        return
    events.append(f"requeued {job_id}")
    for _ in range(150):
        state = squeue("-j", job_id, "-o", "%T")
        if state and state[0][0] == "PENDING":
            subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], capture_output=True)
            events.append(f"released {job_id}")
            return
        time.sleep(0.2)
    events.append(f"{job_id} did not return to PENDING after the requeue")


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> SlurmRun:
    problem = cluster_problem()
    if problem:
        if os.environ.get("RETENTION_SLURM_REQUIRED") == "1":
            pytest.fail(problem)
        pytest.skip(problem)

    tmp = tmp_path_factory.mktemp("slurm")
    overlay = tmp / "grid.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "grid": {"datasets": [GRID["dataset"]], "archs": GRID["archs"], "seeds": GRID["seeds"]},
                "sampler": {"enabled": False},
                # a checkpoint after every epoch, to resume from; one seed per job (the paper grid's
                # setting, the demo's is 3): a requeued job is one run (seed groups' resources:
                # tests/test_profiles.py)
                "train": {"checkpoint_interval_s": 0, "seeds_per_job": 1},
                "pretrain": {"epochs": 1},
            }
        )
    )
    configs = [*map(str, CONFIGS), str(overlay)]
    profile = load_profile()
    write_profile(tmp / "profile", profile)
    workdir, localdir = tmp / "slurm", tmp / "local"
    workdir.mkdir()
    localdir.mkdir()
    env = job_env()

    # the reference: the same runs without SLURM (one core, beside the cluster's two)
    local_out = open(tmp / "local.out", "w")
    local = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(SNAKEFILE),
            "-d",
            str(localdir),
            "--profile",
            str(LOCAL_PROFILE),
            "--cores",
            "1",
            "--configfile",
            *configs,
            "--",
            *(str(traces_path(Path("."), a, s)) for a, s in RUNS),
        ],
        cwd=localdir,
        env=env,
        stdout=local_out,
        stderr=subprocess.STDOUT,
    )

    try:
        # through SLURM as a user runs it: no --cores, the profile's max-threads keeps every
        # job within the node's 2 CPUs (prepare_dataset asks for 4); no sacct here (no
        # slurmdbd), so job states come from squeue; first status check after 5 s
        out_path = tmp / "slurm.out"
        slurm_out = open(out_path, "w")
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snakemake",
                "-s",
                str(SNAKEFILE),
                "-d",
                str(workdir),
                "--profile",
                str(tmp / "profile"),
                "--slurm-status-command",
                "squeue",
                "--slurm-init-seconds-before-status-checks",
                "5",
                "--slurm-keep-successful-logs",
                "--configfile",
                *configs,
            ],
            cwd=workdir,
            env=env,
            stdout=slurm_out,
            stderr=subprocess.STDOUT,
        )
        arch, seed = PREEMPTED
        comment = f"rule_finetune_wildcards_{GRID['dataset']}_{arch}_{seed}"
        rule_log = workdir / f"logs/finetune/{GRID['dataset']}/{arch}/seeds{seed}.log"  # its group: one seed
        preempted, after_epoch, events = None, None, []
        try:
            while proc.poll() is None:
                if time.monotonic() - started > SLURM_TIMEOUT_S:
                    tail = out_path.read_text()[-6000:]
                    raise AssertionError(f"the SLURM run took over {SLURM_TIMEOUT_S} s:\n{tail}")
                if preempted is None:
                    run_id = re.search(r"SLURM run ID: (\S+)", out_path.read_text())
                    running = (
                        [
                            job
                            for job, state, job_comment in squeue("-o", "%i|%T|%k", "--name", run_id[1])
                            if state == "RUNNING" and job_comment == comment
                        ]
                        if run_id
                        else []
                    )
                    epochs = (
                        [int(e) for e in re.findall(r"epoch (\d+)/\d+", rule_log.read_text())]
                        if rule_log.exists()
                        else []
                    )
                    # after the second epoch: at least one checkpoint, several epochs to go
                    if running and epochs and max(epochs) >= 2:
                        preempted, after_epoch = running[0], max(epochs)
                        requeue(preempted, events)
                time.sleep(0.2)
        finally:
            if proc.poll() is None:  # a failed test: stop snakemake, which cancels its jobs
                proc.send_signal(2)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            slurm_out.close()
        seconds = time.monotonic() - started
        local.wait(SLURM_TIMEOUT_S)
    finally:
        if local.poll() is None:
            local.kill()
        local_out.close()
    assert local.returncode == 0, (
        f"the local reference run failed:\n{(tmp / 'local.out').read_text()[-6000:]}"
    )

    output = out_path.read_text()
    submissions = [
        (m["slurm"], m["rule"], m["wildcards"] or "")
        for m in re.finditer(
            r"has been submitted with SLURM jobid (?P<slurm>\d+) \(log: \S*/rule_(?P<rule>\w+?)/"
            r"(?:(?P<wildcards>[^/]*)/)?\d+\.log\)",
            output,
        )
    ]
    run = SlurmRun(
        workdir=workdir,
        localdir=localdir,
        returncode=proc.returncode,
        output=output,
        seconds=seconds,
        submissions=submissions,
        jobs=scontrol_jobs(s for s, _, _ in submissions),
        preempted_job=preempted,
        preempted_after_epoch=after_epoch,
        profile=profile,
        events=events,
    )
    print(f"\nSLURM run: {seconds:.0f} s, {len(submissions)} jobs; {'; '.join(events)}")
    return run


def mem_mb(profile: dict, attempt: int) -> int:
    """The profile's fit_traces memory (MB) for an attempt."""
    return int(eval(fit_traces_mem_mb(profile), {"attempt": attempt}))


def by_rule(run: SlurmRun, rule: str) -> list[tuple[str, str]]:
    return [(job, wildcards) for job, r, wildcards in run.submissions if r == rule]


# ------------------------------------------------------------------ the checks


def test_demo_dag_completes_through_slurm_and_every_output_exists(slurm_run):
    assert slurm_run.returncode == 0, slurm_run.output[-6000:]
    assert re.search(r"(\d+) of \1 steps \(100%\) done", slurm_run.output)
    # every job that computes ran as a SLURM job (the demo downloads nothing); local: the
    # target rule `all` and the links of each run's files to its folder (publish_run)
    local = set(re.findall(r"^localrule (\w+):", slurm_run.output, re.M))
    assert {"all", "publish_run"} <= local <= {"all", "publish_run", "publish_budget_run"}, local
    rules = {rule for _, rule, _ in slurm_run.submissions}
    assert {"prepare_dataset", "finetune", "fit_traces", "dataset_stats", "findings"} <= rules
    assert any(rule.startswith("figure") for rule in rules), rules
    # snakemake itself: every output of the DAG is there and up to date
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(SNAKEFILE),
            "-d",
            str(slurm_run.workdir),
            "-n",
            "--cores",
            "1",
            "--configfile",
            *map(str, CONFIGS),
            str(slurm_run.workdir.parent / "grid.yaml"),
        ],
        capture_output=True,
        text=True,
        env=job_env(),
        cwd=slurm_run.workdir,
    )
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    results = slurm_run.workdir / "results"
    for arch, seed in RUNS:
        assert traces_path(slurm_run.workdir, arch, seed).stat().st_size > 0
        assert (results / f"fits/{GRID['dataset']}/{arch}/seed{seed}.parquet").stat().st_size > 0
    assert (results / f"stats/{GRID['dataset']}/summary.csv").stat().st_size > 0
    assert (results / "findings.md").stat().st_size > 0
    assert list((results / "figures").glob("*.pdf")), "no figure"
    # fine-tuning checkpoints are removed once a run's outputs are written
    assert not list(results.glob("checkpoints/**/*.pt"))


def test_only_fine_tuning_jobs_request_a_gpu(slurm_run):
    assert slurm_run.jobs, "slurmctld knows none of the run's jobs"
    missing = {job for job, _, _ in slurm_run.submissions} - set(slurm_run.jobs)
    assert not missing, f"jobs gone from slurmctld (MinJobAge too short?): {missing}"
    for job, rule, wildcards in slurm_run.submissions:
        record = slurm_run.jobs[job]
        gpu_request = record.get("TresPerJob", "") + record.get("TresPerNode", "")
        if rule in GPU_RULES or re.fullmatch(r"finetune(_budget)?_seeds[\d_]+", rule):
            assert "gpu:1" in gpu_request, f"{rule} {wildcards} (job {job}) without a GPU: {record}"
        else:
            assert "gpu" not in gpu_request, f"{rule} {wildcards} (job {job}) requested a GPU: {gpu_request}"
    # the profile's fine-tuning resources: 8000 MB, one CPU per train.threads (demo: 1)
    for job, _ in by_rule(slurm_run, "finetune"):
        assert slurm_run.jobs[job]["MinMemoryNode"] == "8000M"
        assert slurm_run.jobs[job]["NumCPUs"] == "1"
    # an analysis job: the profile's memory for fit_traces (first attempt), no GPU
    expected = f"{mem_mb(slurm_run.profile, attempt=1)}M"
    assert any(
        slurm_run.jobs[job]["MinMemoryNode"] == expected for job, _ in by_rule(slurm_run, "fit_traces")
    )


def test_no_job_asks_for_more_cpus_than_the_node_has(slurm_run):
    """A job asking for more would stay pending for ever (PartitionConfig): the profile's
    max-threads cuts prepare_dataset's 4 threads to what any node has."""
    node = subprocess.run(["scontrol", "show", "node", "-o", "localhost"], capture_output=True, text=True)
    cpus = int(re.search(r"CPUTot=(\d+)", node.stdout)[1])
    for job, rule, wildcards in slurm_run.submissions:
        assert int(slurm_run.jobs[job]["NumCPUs"]) <= cpus, (rule, wildcards, slurm_run.jobs[job])
    prepare = by_rule(slurm_run, "prepare_dataset")
    cap = str(slurm_run.profile["max-threads"])
    assert prepare and all(slurm_run.jobs[job]["NumCPUs"] == cap for job, _ in prepare), prepare


def test_traces_equal_those_of_a_local_run(slurm_run):
    for arch, seed in RUNS:
        ours = traces_path(slurm_run.workdir, arch, seed).read_bytes()
        local = traces_path(slurm_run.localdir, arch, seed).read_bytes()
        assert ours == local, f"{arch} seed {seed}: traces differ between SLURM and local"


def test_requeued_fine_tuning_job_resumes_from_its_checkpoint(slurm_run):
    assert slurm_run.preempted_job, (
        f"the fine-tuning job {PREEMPTED} was never seen running; {slurm_run.events}"
    )
    record = slurm_run.jobs[slurm_run.preempted_job]
    assert record["Restarts"] == "1", (record, slurm_run.events)
    assert record["JobState"] == "COMPLETED", record
    # it was submitted once: SLURM, not snakemake, ran it again
    arch, seed = PREEMPTED
    assert len([j for j, w in by_rule(slurm_run, "finetune") if w == f"{GRID['dataset']}_{arch}_{seed}"]) == 1
    log = (slurm_run.workdir / f"logs/finetune/{GRID['dataset']}/{arch}/seeds{seed}.log").read_text()
    resumed = re.search(r"resumed from \S+seeds1\.pt after epoch (\d+)", log)
    assert resumed, log
    # it resumed where the killed attempt had got to (one epoch may end as it is killed)
    assert 1 <= int(resumed[1]) <= slurm_run.preempted_after_epoch + 1, (
        resumed[0],
        slurm_run.preempted_after_epoch,
    )
    # and trained only the remaining epochs
    epochs_run = [int(e) for e in re.findall(r"epoch (\d+)/\d+", log)]
    assert epochs_run and min(epochs_run) == int(resumed[1]) + 1
    assert (
        traces_path(slurm_run.workdir, arch, seed).read_bytes()
        == traces_path(slurm_run.localdir, arch, seed).read_bytes()
    )


def test_job_killed_for_memory_is_retried_with_more_and_completes(slurm_run):
    arch, seed = FAILS_ONCE
    attempts = [job for job, w in by_rule(slurm_run, "fit_traces") if w == f"{GRID['dataset']}_{arch}_{seed}"]
    assert len(attempts) == 2, (attempts, slurm_run.output[-4000:])
    first, second = (slurm_run.jobs[job] for job in attempts)
    assert first["MinMemoryNode"] == "64M" and first["JobState"] in ("FAILED", "OUT_OF_MEMORY"), first
    # the retry asks for what the profile asks for on a second attempt (more than the first)
    assert mem_mb(slurm_run.profile, attempt=2) > mem_mb(slurm_run.profile, attempt=1)
    assert second["MinMemoryNode"] == f"{mem_mb(slurm_run.profile, attempt=2)}M", second
    assert second["JobState"] == "COMPLETED", second
    assert "Error in rule fit_traces" in slurm_run.output
    # every other job of the DAG got enough from the profile on its first attempt
    submitted = Counter((rule, wildcards) for _, rule, wildcards in slurm_run.submissions)
    retried = {job: n for job, n in submitted.items() if n > 1}
    assert retried == {("fit_traces", f"{GRID['dataset']}_{arch}_{seed}"): 2}, retried
    assert slurm_run.output.count("Error in rule") == 1, slurm_run.output[-6000:]
