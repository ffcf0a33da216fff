# F6: budgeted fine-tuning with a spaced-repetition sampler against random sampling.
# The scout run is an ordinary run (rule finetune) with seed sampler.scout_seed.


# The same job as a fine-tuning run (script, environment, GPU, threads, wall time), on
# the budget the sampler picks each epoch.
use rule finetune as finetune_budget with:
    """F6: one budgeted fine-tuning run, on the subset the sampler (random or spaced) picks."""
    input:
        unpack(budget_inputs),
    output:
        traces=paths.BUDGET_TRACES,
        metrics=paths.BUDGET_METRICS,
        record=paths.BUDGET_RUN_RECORD,
    log:
        "logs/finetune_budget/{dataset}/{arch}/{sampler}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune_budget/{dataset}/{arch}/{sampler}/seed{seed}.tsv"
    params:
        arch=arch_spec,
        train=result_train_params(config),
        sampler=sampler_spec,
        checkpoint=paths.BUDGET_CHECKPOINT,


# train.seeds_per_job > 1: each (arch, sampler)'s seeds in the same groups as the main
# runs, a group's budgeted runs trained together in one job (as rule finetune_seeds<...>).
for seeds in seed_groups():

    rule:
        """F6: a seed group's budgeted runs of one (dataset, arch, sampler) in one job."""
        name:
            f"finetune_budget_{seed_group(seeds)}"
        input:
            unpack(budget_inputs),
        output:
            traces=seed_group_paths(paths.BUDGET_TRACES, seeds),
            metrics=seed_group_paths(paths.BUDGET_METRICS, seeds),
            record=seed_group_paths(paths.BUDGET_RUN_RECORD, seeds),
        log:
            f"logs/finetune_budget/{{dataset}}/{{arch}}/{{sampler}}/{seed_group(seeds)}.log",
        benchmark:
            f"benchmarks/finetune_budget/{{dataset}}/{{arch}}/{{sampler}}/{seed_group(seeds)}.tsv"
        conda:
            "../../envs/torch.yaml"
        threads: config["train"]["threads"]
        resources:
            gpu=1,
            runtime=seed_group_runtime(seeds),
        params:
            arch=arch_spec,
            train=result_train_params(config),
            sampler=sampler_spec,
            seeds=seeds,
            checkpoint=paths.fill(
                paths.BUDGET_GROUP_CHECKPOINT, group=seed_group(seeds)
            ),
        script:
            "../../scripts/finetune.py"

    workflow.ruleorder(f"finetune_budget_{seed_group(seeds)}", "finetune_budget")
    inherit_profile_resources(
        f"finetune_budget_{seed_group(seeds)}", "finetune_budget"
    )


rule compare_samplers:
    """F6: spaced minus random per architecture, paired by seed; curves and coverage."""
    input:
        traces=sampler_files(paths.BUDGET_TRACES),
        metrics=sampler_files(paths.BUDGET_METRICS),
    output:
        comparison=report(
            paths.fill(paths.SAMPLER, table="comparison"),
            caption="../report/sampler_table.rst",
            category=FIGURE_CATEGORY,
            subcategory=FIGURES["sampler"].subcategory,
            labels={
                "figure": "table: spaced against random sampling",
                "dataset": "{dataset}",
                "format": "table (CSV)",
            },
        ),
        curves=paths.fill(paths.SAMPLER, table="curves"),
        summary=paths.fill(paths.SAMPLER, table="summary"),
    log:
        "logs/compare_samplers/{dataset}.log",
    benchmark:
        "benchmarks/compare_samplers/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        runs=sampler_run_keys,
        trace=primary_trace(),
        margin=config["sampler"]["margin"],
    script:
        "../../scripts/compare_samplers.py"
