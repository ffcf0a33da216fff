# Our runs in the formats others read, under results/export/{dataset}/ (docs/contracts.md
# "Export"): `snakemake export` writes, for every run trained here, the dataset's long table
# (Parquet) with its class centroid cosine, and each run's train samples as dataset
# cartography's dynamics_epoch_<t>.jsonl files. A study with source: traces reads both.


localrules:
    export,


rule export:
    """Every run trained here in the formats others read: results/export/<dataset>/ (long table, cartography)."""
    input:
        export_outputs(),


rule export_table:
    """A dataset's runs as one long table (Parquet) and their class centroid cosine."""
    input:
        traces=run_files(paths.TRACES),
        manifest=paths.MANIFEST,
    output:
        table=paths.EXPORT_TABLE,
        centroids=paths.EXPORT_CENTROIDS,
    log:
        "logs/export_table/{dataset}.log",
    benchmark:
        "benchmarks/export_table/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        runs=run_keys_for_dataset,
    script:
        "../../scripts/export_table.py"


rule export_cartography:
    """One run's train samples as dataset cartography's dynamics_epoch_<t>.jsonl files."""
    input:
        traces=paths.TRACES,
    output:
        folder=directory(paths.EXPORT_CARTOGRAPHY),
    log:
        "logs/export_cartography/{dataset}/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/export_cartography/{dataset}/{arch}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/export_cartography.py"
