# Pretraining from random weights on a configured source dataset (config pretrain), for
# the archs with weights: pretrain: the demo's stand-in for ImageNet weights. One job per
# (source, arch); fine-tuning loads the file as it loads fetched weights.


rule pretrain:
    """Pretrain one architecture from random weights on a source dataset (config pretrain)."""
    input:
        manifest=paths.MANIFEST,
        images=paths.IMAGES,
    output:
        weights=paths.PRETRAIN_WEIGHTS,
        metrics=report(
            paths.PRETRAIN_METRICS,
            caption="../report/pretrain.rst",
            category="Pretraining",
            labels={"source": "{dataset}", "arch": "{arch}"},
        ),
        record=paths.PRETRAIN_RUN_RECORD,
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
        checkpoint=paths.PRETRAIN_CHECKPOINT,
    script:
        "../../scripts/pretrain.py"
