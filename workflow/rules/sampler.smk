# F6: budgeted fine-tuning with a spaced-repetition sampler against random sampling.
# The scout run is an ordinary run (rule finetune) with seed sampler.scout_seed.


# The same job as a fine-tuning run (script, environment, GPU, threads, wall time), on
# the budget the sampler picks each epoch.
use rule finetune as finetune_budget with:
    input:
        unpack(budget_inputs),
    output:
        traces=paths.BUDGET_TRACES,
        metrics=paths.BUDGET_METRICS,
    log:
        "logs/finetune_budget/{dataset}/{arch}/{sampler}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune_budget/{dataset}/{arch}/{sampler}/seed{seed}.tsv"
    params:
        arch=arch_spec,
        train=result_train_params(config),
        sampler=sampler_spec,
        checkpoint=paths.BUDGET_CHECKPOINT,


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
