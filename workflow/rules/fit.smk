rule fit_traces:
    input:
        traces="results/runs/{dataset}/{arch}/seed{seed}/traces.npz",
    output:
        fits="results/fits/{dataset}/{arch}/seed{seed}.parquet",
    params:
        retention=config["retention"],
    log:
        "logs/fit_traces/{dataset}/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/fit_traces/{dataset}/{arch}/seed{seed}.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/fit_traces.py"
