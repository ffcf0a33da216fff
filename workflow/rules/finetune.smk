rule finetune:
    """Fine-tune one run (dataset, arch, seed) and record every train sample's retention trace."""
    input:
        unpack(finetune_inputs),
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
        "logs/finetune/{dataset}/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune/{dataset}/{arch}/seed{seed}.tsv"
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
        checkpoint=paths.CHECKPOINT,
    script:
        "../../scripts/finetune.py"


# train.seeds_per_job > 1: the grid's seeds in groups (seed_groups), each group's runs
# trained together in one job, the same outputs as rule finetune (which the rule order
# below sets aside for them; it still makes the other seeds' runs, e.g. the scout's).
for seeds in seed_groups():

    rule:
        """Fine-tune a seed group's runs of one (dataset, arch) in one job (train.seeds_per_job)."""
        name:
            f"finetune_{seed_group(seeds)}"
        input:
            unpack(finetune_inputs),
        output:
            traces=seed_group_paths(paths.TRACES, seeds),
            metrics=[
                report(
                    path,
                    caption="../report/metrics.rst",
                    category="Runs",
                    subcategory="{dataset}",
                    labels={"arch": "{arch}", "seed": str(seed)},
                )
                for seed, path in zip(seeds, seed_group_paths(paths.METRICS, seeds))
            ],
            record=seed_group_paths(paths.RUN_RECORD, seeds),
        log:
            f"logs/finetune/{{dataset}}/{{arch}}/{seed_group(seeds)}.log",
        benchmark:
            f"benchmarks/finetune/{{dataset}}/{{arch}}/{seed_group(seeds)}.tsv"
        wildcard_constraints:
            dataset=TRAINED_DATASET,
        conda:
            "../../envs/torch.yaml"
        threads: config["train"]["threads"]
        resources:
            gpu=1,
            runtime=seed_group_runtime(seeds),
        params:
            arch=arch_spec,
            train=result_train_params(config),
            seeds=seeds,
            checkpoint=paths.fill(paths.GROUP_CHECKPOINT, group=seed_group(seeds)),
        script:
            "../../scripts/finetune.py"

    workflow.ruleorder(f"finetune_{seed_group(seeds)}", "finetune")
    inherit_profile_resources(f"finetune_{seed_group(seeds)}", "finetune")
