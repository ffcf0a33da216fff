rule fit_traces:
    input:
        traces="results/runs/{dataset}/{arch}/seed{seed}/traces.npz",
    output:
        fits="results/fits/{dataset}/{arch}/seed{seed}.parquet",
    log:
        "logs/fit_traces/{dataset}/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/fit_traces/{dataset}/{arch}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        retention=config["retention"],
    script:
        "../../scripts/fit_traces.py"
