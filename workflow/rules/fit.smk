# Decay fits of every run (docs/method.md section 5) and of its null runs (section 7a).


rule fit_traces:
    """Fit the decay model to every train sample's retention trace of one run."""
    input:
        traces=paths.TRACES,
    output:
        fits=paths.FITS,
    log:
        "logs/fit_traces/{dataset}/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/fit_traces/{dataset}/{arch}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        retention=config["retention"],
        primary=primary_trace(),
    script:
        "../../scripts/fit_traces.py"


rule fit_nulls:
    """Draw and fit the memoryless null runs of one run (stats.null_draws per kind)."""
    input:
        traces=paths.TRACES,
    output:
        nulls=paths.NULLS,
    log:
        "logs/fit_nulls/{dataset}/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/fit_nulls/{dataset}/{arch}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        retention=config["retention"],
        primary=primary_trace(),
        draws=config["stats"]["null_draws"],
        seed=config["stats"]["seed"],
        rank_score=config["stats"]["rank_score"],
    script:
        "../../scripts/fit_nulls.py"
