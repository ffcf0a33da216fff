# Statistics of every finding per dataset (METHOD.md section 7) and the findings table.


rule dataset_stats:
    input:
        fits=fits_for_dataset,
        traces=traces_for_dataset,
    output:
        f1_jaccard="results/stats/{dataset}/f1_jaccard.csv",
        f2_r2="results/stats/{dataset}/f2_r2.csv",
        f3_seed_stability="results/stats/{dataset}/f3_seed_stability.csv",
        f4_class="results/stats/{dataset}/f4_class.csv",
        f4_class_similarity="results/stats/{dataset}/f4_class_similarity.csv",
        f5_early_predictor="results/stats/{dataset}/f5_early_predictor.csv",
        scores="results/stats/{dataset}/scores.csv",
        status_counts="results/stats/{dataset}/status_counts.csv",
        robustness="results/stats/{dataset}/robustness.csv",
        summary="results/stats/{dataset}/summary.csv",
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
    script:
        "../../scripts/compute_stats.py"


rule findings:
    input:
        summaries=summary_tables(),
        paper_values=PAPER_VALUES,
    output:
        csv="results/findings.csv",
        md=report(
            "results/findings.md",
            caption="../report/findings.rst",
            category="Findings",
        ),
    log:
        "logs/findings/findings.log",
    benchmark:
        "benchmarks/findings/findings.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/make_findings.py"
