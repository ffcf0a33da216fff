# The paper's figures (results/figures/{name}.pdf and .png), one rule each, so that
# `snakemake results/figures/<name>.pdf` builds only what that figure reads. Every rule
# runs scripts/plot_figure.py, which dispatches on params.figure. Panel rows: datasets.


rule figure_retention_examples:
    input:
        fits=figure_run_files(FITS_PATH, n_seeds=1),
        traces=figure_run_files(TRACES_PATH, n_seeds=1),
    output:
        pdf=report(
            "results/figures/retention_examples.pdf",
            caption="../report/retention_examples.rst",
            category="Figures",
            subcategory="Retention examples",
        ),
        png="results/figures/retention_examples.png",
    log:
        "logs/figure_retention_examples/retention_examples.log",
    benchmark:
        "benchmarks/figure_retention_examples/retention_examples.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="retention_examples",
        datasets=GRID["datasets"],
        runs=figure_runs(n_seeds=1),
        lam_max=config["retention"]["lambda_max"],
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


rule figure_jaccard:
    input:
        f1_jaccard=figure_stats_files("f1_jaccard"),
        paper_values=PAPER_VALUES,
    output:
        pdf=report(
            "results/figures/jaccard.pdf",
            caption="../report/jaccard.rst",
            category="Figures",
            subcategory="F1 architecture dependence",
        ),
        png="results/figures/jaccard.png",
    log:
        "logs/figure_jaccard/jaccard.log",
    benchmark:
        "benchmarks/figure_jaccard/jaccard.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="jaccard",
        datasets=GRID["datasets"],
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


rule figure_r2:
    input:
        fits=figure_run_files(FITS_PATH),
        f2_r2=figure_stats_files("f2_r2"),
        paper_values=PAPER_VALUES,
    output:
        pdf=report(
            "results/figures/r2.pdf",
            caption="../report/r2.rst",
            category="Figures",
            subcategory="F2 decay structure",
        ),
        png="results/figures/r2.png",
    log:
        "logs/figure_r2/r2.log",
    benchmark:
        "benchmarks/figure_r2/r2.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="r2",
        datasets=GRID["datasets"],
        runs=figure_runs(),
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


rule figure_seed_stability:
    input:
        fits=figure_run_files(FITS_PATH, n_seeds=2),
        f3_seed_stability=figure_stats_files("f3_seed_stability"),
        paper_values=PAPER_VALUES,
    output:
        pdf=report(
            "results/figures/seed_stability.pdf",
            caption="../report/seed_stability.rst",
            category="Figures",
            subcategory="F3 seed stability",
        ),
        png="results/figures/seed_stability.png",
    log:
        "logs/figure_seed_stability/seed_stability.log",
    benchmark:
        "benchmarks/figure_seed_stability/seed_stability.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="seed_stability",
        datasets=GRID["datasets"],
        runs=figure_runs(n_seeds=2),
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


rule figure_class_forgetting:
    input:
        f4_class=figure_stats_files("f4_class"),
        f4_class_similarity=figure_stats_files("f4_class_similarity"),
    output:
        pdf=report(
            "results/figures/class_forgetting.pdf",
            caption="../report/class_forgetting.rst",
            category="Figures",
            subcategory="F4 class level",
        ),
        png="results/figures/class_forgetting.png",
    log:
        "logs/figure_class_forgetting/class_forgetting.log",
    benchmark:
        "benchmarks/figure_class_forgetting/class_forgetting.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="class_forgetting",
        datasets=GRID["datasets"],
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


rule figure_warmup_loss:
    input:
        fits=figure_run_files(FITS_PATH),
        paper_values=PAPER_VALUES,
    output:
        pdf=report(
            "results/figures/warmup_loss.pdf",
            caption="../report/warmup_loss.rst",
            category="Figures",
            subcategory="F5 early predictor",
        ),
        png="results/figures/warmup_loss.png",
    log:
        "logs/figure_warmup_loss/warmup_loss.log",
    benchmark:
        "benchmarks/figure_warmup_loss/warmup_loss.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="warmup_loss",
        datasets=GRID["datasets"],
        runs=figure_runs(),
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


rule figure_training_curves:
    input:
        metrics=metrics_for_all_runs(),
    output:
        pdf=report(
            "results/figures/training_curves.pdf",
            caption="../report/training_curves.rst",
            category="Figures",
            subcategory="Training",
        ),
        png="results/figures/training_curves.png",
    log:
        "logs/figure_training_curves/training_curves.log",
    benchmark:
        "benchmarks/figure_training_curves/training_curves.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="training_curves",
        datasets=GRID["datasets"],
        runs=figure_runs(),
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


rule figure_robustness:
    input:
        robustness=figure_stats_files("robustness"),
        paper_values=PAPER_VALUES,
    output:
        pdf=report(
            "results/figures/robustness.pdf",
            caption="../report/robustness.rst",
            category="Figures",
            subcategory="Robustness",
        ),
        png="results/figures/robustness.png",
    log:
        "logs/figure_robustness/robustness.log",
    benchmark:
        "benchmarks/figure_robustness/robustness.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="robustness",
        datasets=GRID["datasets"],
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


rule figure_alternative_scores:
    input:
        fits=figure_run_files(FITS_PATH),
        scores=figure_stats_files("scores"),
    output:
        pdf=report(
            "results/figures/alternative_scores.pdf",
            caption="../report/alternative_scores.rst",
            category="Figures",
            subcategory="Beyond the paper",
        ),
        png="results/figures/alternative_scores.png",
    log:
        "logs/figure_alternative_scores/alternative_scores.log",
    benchmark:
        "benchmarks/figure_alternative_scores/alternative_scores.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        figure="alternative_scores",
        datasets=GRID["datasets"],
        runs=figure_runs(),
        arch_labels=figure_arch_labels(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/plot_figure.py"


if sampler_datasets():

    rule figure_sampler:
        input:
            comparison=figure_sampler_files("comparison"),
            curves=figure_sampler_files("curves"),
            paper_values=PAPER_VALUES,
        output:
            pdf=report(
                "results/figures/sampler.pdf",
                caption="../report/sampler.rst",
                category="Figures",
                subcategory="F6 spaced repetition",
            ),
            png="results/figures/sampler.png",
        log:
            "logs/figure_sampler/sampler.log",
        benchmark:
            "benchmarks/figure_sampler/sampler.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            figure="sampler",
            datasets=sampler_datasets(),
            arch_labels=figure_arch_labels(),
            dpi=config["figures"]["dpi"],
        script:
            "../../scripts/plot_figure.py"
