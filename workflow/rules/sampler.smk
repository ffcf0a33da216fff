# F6: budgeted fine-tuning with a spaced-repetition sampler against random sampling.
# The scout run is an ordinary run (rule finetune) with seed sampler.scout_seed.


# The same job as a fine-tuning run (script, environment, GPU, threads, wall time), on
# the budget the sampler picks each epoch; its runs linked like the others.
use rule finetune as finetune_budget with:
    """F6: a group of seeds' budgeted runs of one (dataset, arch, sampler) on the subsets the sampler (random or spaced) picks."""
    input:
        unpack(budget_inputs),
    output:
        job=directory(paths.BUDGET_JOB),
    log:
        "logs/finetune_budget/{dataset}/{arch}/{sampler}/seeds{group}.log",
    benchmark:
        "benchmarks/finetune_budget/{dataset}/{arch}/{sampler}/seeds{group}.tsv"
    params:
        arch=arch_spec,
        train=result_train_params(config),
        seeds=group_seeds,
        traces=job_files("traces.npz"),
        metrics=job_files("metrics.csv"),
        record=job_files("run.json"),
        sampler=sampler_spec,
        checkpoint=paths.BUDGET_CHECKPOINT,


use rule publish_run as publish_budget_run with:
    """F6: link one budgeted run's files from its group's job folder to the run's own folder."""
    input:
        job=run_job(paths.BUDGET_JOB),
    output:
        traces=paths.BUDGET_TRACES,
        metrics=paths.BUDGET_METRICS,
        record=paths.BUDGET_RUN_RECORD,
    log:
        "logs/publish_budget_run/{dataset}/{arch}/{sampler}/seed{seed}.log",
    benchmark:
        "benchmarks/publish_budget_run/{dataset}/{arch}/{sampler}/seed{seed}.tsv"


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
