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
