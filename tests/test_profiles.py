"""The SLURM profile without a cluster: its YTE template and a dry run of the demo through it.

tests/test_slurm.py runs the profile on a real one-node cluster (.ci/slurm-up.sh).
"""

import os
import re
import subprocess
import sys

import pytest

from .conftest import REPO

PROFILE = REPO / "workflow" / "profiles" / "slurm"
SLURM_UP = REPO / ".ci" / "slurm-up.sh"
GPU_PARTITION = "gpu_test"  # RETENTION_SLURM_GPU_PARTITION of the dry run


def site_env(**settings: str) -> dict[str, str]:
    """This environment without a user's site settings or profile, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETENTION_SLURM_", "SNAKEMAKE_PROFILE"))}
    return {**env, **settings}


def load_profile(**settings: str) -> dict:
    """The SLURM profile as YTE renders it with these site settings (environment variables)."""
    import yte

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("RETENTION_SLURM_")]:
            mp.delenv(key)
        for key, value in settings.items():
            mp.setenv(key, value)
        with open(PROFILE / "config.v8+.yaml") as fh:
            return yte.process_yaml(fh, require_use_yte=True)


def ci_node_cpus() -> int:
    """The CPUs of the CI cluster's node, as .ci/slurm-up.sh writes them into slurm.conf."""
    match = re.search(r"^NodeName=localhost\s.*\bCPUs=(\d+)", SLURM_UP.read_text(), re.MULTILINE)
    assert match, f"no NodeName=localhost ... CPUs= line in {SLURM_UP}"
    return int(match[1])


def test_threads_are_capped_at_the_cpus_of_the_ci_node():
    """A job asking for more CPUs than a node has stays pending for ever (PartitionConfig)."""
    cap = load_profile()["max-threads"]
    assert isinstance(cap, int) and 1 <= cap <= ci_node_cpus()
    # the rule that asks for the most threads asks for more than that
    assert int(re.search(r"threads: (\d+)", (REPO / "workflow/rules/data.smk").read_text())[1]) > cap


def test_the_cap_is_a_site_setting():
    assert load_profile(RETENTION_SLURM_MAX_THREADS="8")["max-threads"] == 8
    assert load_profile(RETENTION_SLURM_MAX_THREADS="")["max-threads"] == load_profile()["max-threads"]


@pytest.fixture(scope="module")
def dry_run_jobs(tmp_path_factory) -> list[dict]:
    """Every job of a dry run of the demo through the SLURM profile, submitted from a host
    with many cores (--cores 64 stands in for none: a dry run otherwise uses 1), as
    {rule, threads, resources, wildcards}."""
    workdir = tmp_path_factory.mktemp("slurm_dry_run")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(workdir),
            "--profile",
            str(PROFILE),
            "--cores",
            "64",
            "--configfile",
            str(REPO / "config.yaml"),
            str(REPO / "config/demo.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        check=False,
        env=site_env(RETENTION_SLURM_GPU_PARTITION=GPU_PARTITION),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", proc.stdout, flags=re.MULTILINE)[1:]:
        threads = re.search(r"^\s+threads: (\d+)$", block, re.MULTILINE)
        resources = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE)
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE)
        jobs.append(
            {
                "rule": re.match(r"(?:local)?rule (\w+):", block)[1],
                "threads": int(threads[1]) if threads else 1,
                "resources": dict(kv.split("=", 1) for kv in resources[1].split(", ")) if resources else {},
                "wildcards": dict(kv.split("=", 1) for kv in wildcards[1].split(", ")) if wildcards else {},
            }
        )
    assert len(jobs) > 50, proc.stdout[-3000:]
    return jobs


def test_no_job_of_the_demo_gets_more_threads_than_the_cap(dry_run_jobs):
    cap = load_profile()["max-threads"]
    assert max(job["threads"] for job in dry_run_jobs) <= cap
    prepare = [job for job in dry_run_jobs if job["rule"] == "prepare_dataset"]
    assert prepare and all(job["threads"] == cap for job in prepare)  # 4 in the rule


def test_fine_tuning_and_pretraining_jobs_get_the_gpu_partition(dry_run_jobs):
    for rule in ("finetune", "pretrain"):
        jobs = [job for job in dry_run_jobs if job["rule"] == rule]
        assert jobs and all(job["resources"].get("slurm_partition") == GPU_PARTITION for job in jobs), jobs


def test_seed_group_jobs_get_the_resources_of_their_rule(dry_run_jobs):
    """Every seed group is a job of rule finetune (or finetune_budget), wildcard {group}: the
    profile's set-resources for those rules reach every group, of three seeds or of one."""
    keys = ("slurm_partition", "gpu", "gres", "cpus_per_task", "mem_mb")
    default_mem_mb = str(eval(load_profile()["default-resources"]["mem_mb"], {"attempt": 1}))
    for rule in ("finetune", "finetune_budget"):
        jobs = [job for job in dry_run_jobs if job["rule"] == rule]
        assert jobs, rule
        for job in jobs:
            assert job["resources"].get("slurm_partition") == GPU_PARTITION, job
            # the profile's memory depends on the input (<TBD> in a dry run), not the default 3000
            assert job["resources"].get("mem_mb") != default_mem_mb, job
    jobs = [job for job in dry_run_jobs if job["rule"] == "finetune"]
    three = next(job for job in jobs if job["wildcards"].get("group") == "0_1_2")
    alone = next(job for job in jobs if "_" not in job["wildcards"].get("group", "_"))  # a scout run
    assert {k: three["resources"].get(k) for k in keys} == {k: alone["resources"].get(k) for k in keys}
    assert not [job for job in dry_run_jobs if job["rule"].startswith("finetune_seeds")]
