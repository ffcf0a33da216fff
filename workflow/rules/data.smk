rule prepare_dataset:
    input:
        unpack(dataset_source),
    output:
        manifest="results/data/{dataset}/manifest.csv",
        images="results/data/{dataset}/images.npy",
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 4
    params:
        spec=dataset_spec,
        data=config["data"],
    script:
        "../../scripts/prepare_dataset.py"
