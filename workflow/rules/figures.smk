# The figures, one rule each, generated from the one list of retention/figures/specs.py:
# results/figures/{name}.pdf and .png for a figure of every dataset, and
# results/figures/{dataset}/{name}.pdf and .png for one drawn per dataset, so that
# `snakemake results/figures/digits/jaccard.pdf` builds only what that figure reads. Every
# rule runs scripts/plot_figure.py. In the HTML report the PNG is shown and the PDF is the
# download, both under the figure's subcategory (sorted so that they follow the findings
# in the order of the paper's findings), labelled by what they show and their dataset.

for name in figure_names():

    rule:
        """Draw one figure of retention/figures/specs.py (PDF and PNG) from the tables it reads."""
        name:
            f"figure_{name}"
        input:
            unpack(figure_inputs(name)),
        output:
            pdf=report(
                figure_path(name, "pdf"),
                caption=f"../report/{name}.rst",
                category=FIGURE_CATEGORY,
                subcategory=FIGURES[name].subcategory,
                labels=figure_specs.report_labels(name, "pdf"),
            ),
            png=report(
                figure_path(name, "png"),
                caption=f"../report/{name}.rst",
                category=FIGURE_CATEGORY,
                subcategory=FIGURES[name].subcategory,
                labels=figure_specs.report_labels(name, "png"),
            ),
        log:
            figure_log(name, "logs"),
        benchmark:
            figure_log(name, "benchmarks")
        conda:
            "../../envs/analysis.yaml"
        params:
            job=figure_params(name),
            words=figure_specs.REPORT_WORDS,
        script:
            "../../scripts/plot_figure.py"
