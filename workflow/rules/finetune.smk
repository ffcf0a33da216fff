rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        traces="results/runs/{dataset}/{arch}/seed{seed}/traces.npz",
        metrics=report(
            "results/runs/{dataset}/{arch}/seed{seed}/metrics.csv",
            caption="../report/metrics.rst",
            category="Runs",
            subcategory="{dataset}",
            labels={"arch": "{arch}", "seed": "{seed}"},
        ),
    log:
        "logs/finetune/{dataset}/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune/{dataset}/{arch}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        runtime=finetune_runtime,
    params:
        arch=arch_spec,
        train=result_train_params(config),
        checkpoint="results/checkpoints/{dataset}/{arch}/seed{seed}.pt",
    script:
        "../../scripts/finetune.py"


# train.seeds_per_job > 1: the grid's seeds in groups (seed_groups), each group's runs
# trained together in one job, the same outputs as rule finetune (which the rule order
# below sets aside for them; it still makes the other seeds' runs, e.g. the scout's).
for seeds in seed_groups():

    rule:
        name:
            f"finetune_{seed_group(seeds)}"
        input:
            unpack(finetune_inputs),
        output:
            traces=seed_group_paths("traces.npz", seeds),
            metrics=[
                report(
                    path,
                    caption="../report/metrics.rst",
                    category="Runs",
                    subcategory="{dataset}",
                    labels={"arch": "{arch}", "seed": str(seed)},
                )
                for seed, path in zip(seeds, seed_group_paths("metrics.csv", seeds))
            ],
        log:
            f"logs/finetune/{{dataset}}/{{arch}}/{seed_group(seeds)}.log",
        benchmark:
            f"benchmarks/finetune/{{dataset}}/{{arch}}/{seed_group(seeds)}.tsv"
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
            checkpoint=f"results/checkpoints/{{dataset}}/{{arch}}/{seed_group(seeds)}.pt",
        script:
            "../../scripts/finetune.py"

    workflow.ruleorder(f"finetune_{seed_group(seeds)}", "finetune")
