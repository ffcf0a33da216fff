# The page the HTML report opens on: the findings as HTML (the verdicts first, with the
# figure of every primary finding) and the config as YAML; workflow/report/workflow.rst
# embeds it.


rule findings_html:
    """results/findings.html: the findings table as HTML, the verdicts first, and the config as YAML."""
    input:
        csv=paths.FINDINGS_CSV,
        md=paths.FINDINGS_MD,
        figure=paths.FIGURE.format(name="primary_findings", ext="png"),
    output:
        html=report(
            paths.FINDINGS_HTML,
            caption="../report/findings.rst",
            category="Findings",
        ),
    log:
        "logs/findings/findings_html.log",
    benchmark:
        "benchmarks/findings/findings_html.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        config=config,
        words=figure_specs.REPORT_WORDS,
    script:
        "../../scripts/render_findings.py"
