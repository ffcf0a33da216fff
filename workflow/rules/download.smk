# Datasets from their hosts into resources/datasets/{dataset}: checksummed, resumable
# across runs (downloads in progress stay in resources/datasets/.partial/{dataset}/),
# extracted safely into a scratch folder renamed into place. Runs on the login node
# (localrule); compute jobs only read the extracted tree.


localrules:
    download_dataset,


rule download_dataset:
    """Download, check and extract one dataset's files into resources/datasets/{dataset}."""
    output:
        dataset=directory(paths.DATASET_DOWNLOAD),
    log:
        "logs/download_dataset/{dataset}.log",
    benchmark:
        "benchmarks/download_dataset/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        files=dataset_downloads,
    script:
        "../../scripts/download_dataset.py"
