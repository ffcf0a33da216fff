# Provenance of every training run: the run.json files beside their outputs, in one table.


rule provenance:
    """results/provenance.csv: every training run's versions, device, commit and times (run.json)."""
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
