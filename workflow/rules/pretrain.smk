# Pretraining from random weights on a configured source dataset (config pretrain), for
# the archs with weights: pretrain: the demo's stand-in for ImageNet weights. One job per
# (source, arch); fine-tuning loads the file as it loads fetched weights.


rule pretrain:
    """Pretrain one architecture from random weights on a source dataset (config pretrain)."""
    input:
        manifest="results/data/{dataset}/manifest.csv",
        images="results/data/{dataset}/images.npy",
    output:
        weights=PRETRAIN_WEIGHTS,
        metrics=report(
            PRETRAIN_METRICS,
            caption="../report/pretrain.rst",
            category="Pretraining",
            labels={"source": "{dataset}", "arch": "{arch}"},
        ),
    log:
        "logs/pretrain/{dataset}/{arch}.log",
    benchmark:
        "benchmarks/pretrain/{dataset}/{arch}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        runtime=pretrain_runtime,
    params:
        arch=pretrain_arch,
        train=pretrain_train_params(config),
        pretrain=pretrain_spec(),
        checkpoint="results/checkpoints/pretrain/{dataset}/{arch}.pt",
    script:
        "../../scripts/pretrain.py"
