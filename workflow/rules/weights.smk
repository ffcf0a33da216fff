# ImageNet weights of each architecture, fetched once from the Hugging Face hub on the
# login node (localrule); fine-tuning jobs load the file with HF_HUB_OFFLINE=1.


localrules:
    fetch_weights,


rule fetch_weights:
    """Fetch one architecture's ImageNet weights from the Hugging Face hub."""
    output:
        weights=paths.WEIGHTS,
    log:
        "logs/fetch_weights/{arch}.log",
    benchmark:
        "benchmarks/fetch_weights/{arch}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        model=arch_model,
    script:
        "../../scripts/fetch_weights.py"
