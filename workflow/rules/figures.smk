# The figures (results/figures/{name}.pdf and .png), one rule each, generated from the one
# list of retention/figure_specs.py: `snakemake results/figures/<name>.pdf` builds only
# what that figure reads. Every rule runs scripts/plot_figure.py. Panel rows: datasets.
# In the HTML report they follow the findings table (category "Findings" sorts first),
# under subcategories named so that they sort in the order of the paper's findings.

for name in figure_names():

    rule:
        """Draw one figure of retention/figure_specs.py (PDF and PNG) from the tables it reads."""
        name:
            f"figure_{name}"
        input:
            **figure_inputs(name),
        output:
            pdf=report(
                paths.FIGURE.format(name=name, ext="pdf"),
                caption=f"../report/{name}.rst",
                category=FIGURE_CATEGORY,
                subcategory=FIGURES[name].subcategory,
            ),
            png=paths.FIGURE.format(name=name, ext="png"),
        log:
            f"logs/figures/{name}.log",
        benchmark:
            f"benchmarks/figures/{name}.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            **figure_params(name),
        script:
            "../../scripts/plot_figure.py"
