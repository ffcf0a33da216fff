# Statistics of every finding per dataset (docs/method.md section 7) and the findings table.


rule dataset_stats:
    """Every statistics table of one dataset: the registry's findings with their nulls."""
    input:
        fits=run_files(paths.FITS),
        traces=run_files(paths.TRACES),
        nulls=run_files(paths.NULLS),
        manifest=paths.MANIFEST,
        pretrain=pretrain_metrics(),
        pretrain_manifest=pretrain_manifest(),
    output:
        **{
            t: paths.fill(paths.STATS, table=t)
            for t in paths.STATS_TABLES
            if t != "samples"
        },
        samples=report(
            paths.fill(paths.STATS, table="samples"),
            caption="../report/samples.rst",
            category="Samples",
            labels={"dataset": "{dataset}", "table": "samples.csv"},
        ),
    log:
        "logs/dataset_stats/{dataset}.log",
    benchmark:
        "benchmarks/dataset_stats/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        runs=run_keys_for_dataset,
        stats=config["stats"],
        primary=primary_trace(),
        lambda_max=config["retention"]["lambda_max"],
        pretrain_archs=pretrain_archs(),
        convergence=config["convergence"],
    script:
        "../../scripts/compute_stats.py"


rule findings:
    """The findings table: verdicts, primary and exploratory rows of every dataset."""
    input:
        summaries=summary_tables(),
    output:
        csv=paths.FINDINGS_CSV,
        md=paths.FINDINGS_MD,
    log:
        "logs/findings/findings.log",
    benchmark:
        "benchmarks/findings/findings.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        study=study(),
    script:
        "../../scripts/make_findings.py"
