# Provenance of every training run: the run.json files beside their outputs, in one table.


rule provenance:
    """One row per training run (grid, scout, budgeted, pretraining): versions, device,
    git commit, start, end and duration, from every run's run.json."""
    input:
        records=run_records(),
    output:
        table=report(
            paths.PROVENANCE,
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "logs/provenance/provenance.log",
    benchmark:
        "benchmarks/provenance/provenance.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/collect_provenance.py"
