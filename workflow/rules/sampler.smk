# F6: budgeted fine-tuning with a spaced-repetition sampler against random sampling.
# The scout run is an ordinary run (rule finetune) with seed sampler.scout_seed.


# The same job as a fine-tuning run (script, environment, GPU, threads, wall time), on
# the budget the sampler picks each epoch.
use rule finetune as finetune_budget with:
    input:
        unpack(budget_inputs),
    output:
        traces="results/sampler/{dataset}/{arch}/{sampler}/seed{seed}/traces.npz",
        metrics="results/sampler/{dataset}/{arch}/{sampler}/seed{seed}/metrics.csv",
    log:
        "logs/finetune_budget/{dataset}/{arch}/{sampler}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune_budget/{dataset}/{arch}/{sampler}/seed{seed}.tsv"
    params:
        arch=arch_spec,
        train=result_train_params(config),
        sampler=sampler_spec,
        checkpoint="results/checkpoints/sampler/{dataset}/{arch}/{sampler}/seed{seed}.pt",


rule compare_samplers:
    input:
        traces=sampler_traces_for_dataset,
        metrics=sampler_metrics_for_dataset,
    output:
        comparison=report(
            "results/sampler/{dataset}/comparison.csv",
            caption="../report/sampler_table.rst",
            category="F6 spaced repetition",
        ),
        curves="results/sampler/{dataset}/curves.csv",
        summary="results/sampler/{dataset}/summary.csv",
    log:
        "logs/compare_samplers/{dataset}.log",
    benchmark:
        "benchmarks/compare_samplers/{dataset}.tsv"
    conda:
        "../../envs/torch.yaml"  # sampler.py uses torch
    params:
        runs=sampler_run_keys,
        stats=config["stats"],
        trace=primary_trace(),
    script:
        "../../scripts/compare_samplers.py"
