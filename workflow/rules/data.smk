rule prepare_dataset:
    """Decode one dataset's images at its storage size into images.npy, with its manifest."""
    input:
        unpack(dataset_source),
    output:
        manifest=paths.MANIFEST,
        images=paths.IMAGES,
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 4
    params:
        spec=dataset_spec,
        path=dataset_path,
        data=config["data"],
    script:
        "../../scripts/prepare_dataset.py"
