# Fine-tuning (docs/method.md section 3): one job per group of seeds of one (dataset, arch),
# train.seeds_per_job of the grid's seeds trained together (a scout run alone); each run's
# files are then linked to its own folder.


rule finetune:
    """Fine-tune a group of seeds of one (dataset, arch) in one job and record every train sample's retention trace."""
    input:
        unpack(finetune_inputs),
    output:
        job=directory(paths.JOB),
    log:
        "logs/finetune/{dataset}/{arch}/seeds{group}.log",
    benchmark:
        "benchmarks/finetune/{dataset}/{arch}/seeds{group}.tsv"
    wildcard_constraints:
        dataset=TRAINED_DATASET,
    conda:
        "../../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        runtime=finetune_runtime,
    params:
        arch=arch_spec,
        train=result_train_params(config),
        seeds=group_seeds,
        traces=job_files("traces.npz"),
        metrics=job_files("metrics.csv"),
        record=job_files("run.json"),
        checkpoint=paths.CHECKPOINT,
    script:
        "../../scripts/finetune.py"


rule publish_run:
    """Link one run's files from its group's job folder to the run's own folder (no second copy)."""
    input:
        job=run_job(paths.JOB),
    output:
        traces=paths.TRACES,
        metrics=report(
            paths.METRICS,
            caption="../report/metrics.rst",
            category="Runs",
            subcategory="{dataset}",
            labels={"arch": "{arch}", "seed": "{seed}"},
        ),
        record=paths.RUN_RECORD,
    log:
        "logs/publish_run/{dataset}/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/publish_run/{dataset}/{arch}/seed{seed}.tsv"
    wildcard_constraints:
        dataset=TRAINED_DATASET,
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        run=paths.JOB_RUN,
    shell:
        f"bash {PUBLISH_RUN} "
        "{input.job:q}/{params.run} {output.traces:q} {output.metrics:q} {output.record:q} > {log:q} 2>&1"
