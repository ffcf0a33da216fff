# Runs recorded elsewhere (datasets with source: traces): a long table or cartography
# folders become each run's traces.npz and the dataset's manifest.csv, which the fits,
# null runs, statistics, findings and figures read as they read trained runs. One rule per
# such dataset, without wildcards, so Snakemake prefers it to prepare_dataset and finetune
# for these files; the runs are the import's (retention.dynamics.sources.dataset_runs).

for dataset in traces_datasets():

    rule:
        """Import a dataset's runs recorded elsewhere (source: traces): each run's traces.npz and manifest.csv."""
        name:
            f"import_traces_{dataset}"
        input:
            **imports.import_files(config, dataset),
        output:
            traces=grid_files(paths.TRACES, [dataset]),
            manifest=paths.MANIFEST.format(dataset=dataset),
        log:
            f"logs/import_traces/{dataset}.log",
        benchmark:
            f"benchmarks/import_traces/{dataset}.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            settings=imports.import_settings(config, dataset),
            runs=[imports.run_key(a, s) for a, s in grid_runs(dataset)],
        script:
            "../../scripts/import_traces.py"


# F6 trains new budgeted runs on a dataset's images: a traces dataset has none, so its F6
# rows are "not comparable", with the reason, in the findings table.
for dataset in sampler_not_comparable():

    rule:
        """F6 of a dataset of runs recorded elsewhere: its rows, not comparable (no images to train on)."""
        name:
            f"sampler_not_comparable_{dataset}"
        output:
            summary=paths.fill(paths.SAMPLER, table="summary").format(dataset=dataset),
        log:
            f"logs/sampler_not_comparable/{dataset}.log",
        benchmark:
            f"benchmarks/sampler_not_comparable/{dataset}.tsv"
        conda:
            "../../envs/analysis.yaml"
        params:
            group="F6",
            dataset=dataset,
            archs=list(dict.fromkeys(a for a, _ in grid_runs(dataset))),
            trace=primary_trace(),
            reason=SAMPLER_NOT_COMPARABLE,
        script:
            "../../scripts/not_comparable.py"
