"""Runs recorded elsewhere (source: traces): the long table and cartography folders become
valid traces.npz files, our runs export to both formats and come back unchanged, and every
bad input gets one line naming the file, the row or line and the column, with nothing
written (retention.dynamics: longtable, cartography, importing, export)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention import io, stats
from retention.config import validate_config
from retention.dynamics import export
from retention.dynamics import importing as importer
from retention.dynamics import sources as imports
from retention.errors import ConfigError, DataError, StorageError
from retention.fitting.fit import fit_table
from retention.fitting.simulate import simulate_runs
from retention.fitting.traces import load_traces

from .conftest import REPO

RUNS = [("cnn", 0), ("cnn", 1), ("vit", 0), ("vit", 1)]


@pytest.fixture(scope="module")
def runs():
    return simulate_runs(RUNS, n_samples=80, n_heldout=20, epochs=6, warmup_epochs=2, n_classes=4)


def long_table(runs) -> pd.DataFrame:
    return pd.concat([export.run_table(a, arch, seed) for (arch, seed), a in runs.items()], ignore_index=True)


def outputs(folder: Path, keys) -> dict:
    return {imports.run_key(a, s): str(folder / a / f"seed{s}" / "traces.npz") for a, s in keys}


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------ the long table


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_long_table_becomes_one_valid_traces_file_per_run_with_every_array_unchanged(
    runs, tmp_path, suffix
):
    table = long_table(runs)
    path = tmp_path / f"dynamics{suffix}"
    io.save_table(path, table)
    cos = pd.concat([export.centroid_table(a, arch, seed) for (arch, seed), a in runs.items()])
    io.save_table(tmp_path / "cos.csv", cos)
    out = outputs(tmp_path / "runs", runs)
    importer.import_dataset(
        {"format": "table", "path": str(path)}, out, tmp_path / "manifest.csv", tmp_path / "cos.csv"
    )
    for (arch, seed), arrays in runs.items():
        traces = load_traces(out[imports.run_key(arch, seed)])
        for key, want in arrays.items():
            got = getattr(traces, key)
            assert got.dtype == np.asarray(want).dtype and np.array_equal(got, want), key
    manifest = pd.read_csv(tmp_path / "manifest.csv")
    assert list(manifest.columns) == ["sample_id", "label", "class_name", "split", "source", "group"]
    assert len(manifest) == 100 and set(manifest["split"]) == {"train", "heldout"}


def test_the_runs_come_from_the_table_in_order_of_first_appearance(runs, tmp_path):
    table = long_table(runs)
    table["run"] = table["arch"].astype(str) + "/seed" + table["seed"].astype(str)
    path = tmp_path / "t.parquet"
    io.save_table(path, table.drop(columns=["arch", "seed"]).iloc[::-1])
    assert imports.table_runs(path) == [("vit", 1), ("vit", 0), ("cnn", 1), ("cnn", 0)]
    config = {"datasets": {"mine": {"source": "traces", "path": str(path)}}}
    assert imports.dataset_runs(config, "mine") == imports.table_runs(path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_tables_runs_are_read_once_and_again_when_the_file_changes(runs, tmp_path, suffix):
    path, cache = tmp_path / f"t{suffix}", tmp_path / "cache"
    io.save_table(path, long_table(runs))
    assert imports.table_runs(path, None, cache) == list(runs)
    (entry,) = (cache / "imports").iterdir()
    assert json.loads(entry.read_text())["runs"] == [list(k) for k in runs]
    assert imports.table_runs(path, None, cache) == list(runs)  # from the cache
    io.save_table(path, long_table({k: runs[k] for k in RUNS[2:]}))
    os.utime(path, ns=(1, 1))  # another version of the file, even within the clock's resolution
    assert imports.table_runs(path, None, cache) == RUNS[2:]
    assert len(list((cache / "imports").iterdir())) == 2


def test_the_fewest_columns_import_with_what_is_not_recorded_marked_as_the_contract_says(runs, tmp_path):
    """run, sample_id, epoch, correct only (Toneva et al.'s record): no held-out samples
    (M = 0), p_true, loss and el2n NaN, pred -1, one class; the warmup from t0_epoch."""
    table = long_table(runs)
    table = table[table["split"] == "train"].assign(
        run=lambda t: t["arch"].astype(str) + "_seed" + t["seed"].astype(str)
    )
    path = tmp_path / "toneva.csv"
    table[["run", "sample_id", "epoch", "correct"]].to_csv(path, index=False)
    out = outputs(tmp_path / "runs", runs)
    imported = importer.import_dataset(
        {"format": "table", "path": str(path), "t0_epoch": 3}, out, tmp_path / "manifest.csv"
    )
    assert set(imported.absent) >= {"held-out records", "labels", "p_true", "loss", "class-centroid cosine"}
    traces = load_traces(out["cnn/seed0"])
    assert traces.t.tolist() == list(range(-2, 7)) and traces.heldout_sample_id.size == 0
    assert np.array_equal(traces.correct, runs[("cnn", 0)]["correct"])
    assert np.isnan(traces.p_true).all() and not traces.has_p_true and np.isnan(traces.loss).all()
    assert (traces.pred == -1).all() and traces.class_names.tolist() == ["unlabelled"]


def test_t_is_the_column_t_else_the_epoch_minus_t0_epoch_else_from_the_first_epoch(runs, tmp_path):
    table = long_table({("cnn", 0): runs[("cnn", 0)]})
    path = tmp_path / "t.parquet"
    io.save_table(path, table.drop(columns=["t"]))
    for t0, first in ((None, 0), (2, -1), (3, -2)):
        got = importer.read_source({"format": "table", "path": str(path), "t0_epoch": t0})
        assert got.runs[("cnn", 0)]["t"][0] == first
    io.save_table(path, table)
    with pytest.raises(DataError, match="has column 't', so the setting t0_epoch"):
        importer.read_source({"format": "table", "path": str(path), "t0_epoch": 1})


# ------------------------------------------------------------------ cartography


def write_jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_cartography_folders_are_read_as_they_are_p_true_the_softmax_at_gold_correct_the_argmax(tmp_path):
    logits = {
        0: [[2.0, 0.0, 0.0], [0.0, 1.0, 0.5]],
        1: [[0.0, 3.0, 0.0], [0.0, 2.0, 0.0]],
        2: [[1.0, 1.5, 0.0], [0.1, 0.2, 4.0]],
        3: [[5.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
    }
    run = tmp_path / "dyn" / "bert_seed3" / "training_dynamics"
    for k, rows in logits.items():
        key = f"logits_epoch_{k}" if k % 2 else "logits"  # cartography's own key, and the plain one
        write_jsonl(
            run / f"dynamics_epoch_{k}.jsonl",
            [{"guid": 7, key: rows[0], "gold": 0}, {"guid": 9, key: rows[1], "gold": 2}][:: -1 if k else 1],
        )
    spec = {"source": "traces", "path": str(tmp_path / "dyn")}
    assert imports.imported_runs(spec, "mine") == [("bert", 3)]
    got = importer.read_source(imports.settings_of(spec, "mine")).runs[("bert", 3)]
    z = np.array([logits[k] for k in range(4)])  # (T, N, C)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    assert got["sample_id"].tolist() == [7, 9] and got["label"].tolist() == [0, 2]
    np.testing.assert_allclose(got["p_true"], np.stack([p[:, 0, 0], p[:, 1, 2]]), rtol=1e-6)
    assert got["correct"].tolist() == [[True, False, False, True], [False, False, True, True]]
    np.testing.assert_allclose(got["loss"], -np.log(got["p_true"]), rtol=1e-5)
    assert got["heldout_sample_id"].size == 0 and np.isnan(got["class_centroid_cosine"]).all()


def test_string_guids_are_numbered_in_sorted_order_and_kept_as_the_source(tmp_path):
    for k in range(3):
        write_jsonl(
            tmp_path / "run" / f"dynamics_epoch_{k}.jsonl",
            [{"guid": g, "logits": [0.0, 1.0], "gold": 1} for g in ("snli-b", "snli-a")],
        )
    spec = {"source": "traces", "path": str(tmp_path / "run"), "run": "roberta/seed0"}
    imported = importer.read_source(imports.settings_of(spec, "mine"))
    assert imported.runs[("roberta", 0)]["sample_id"].tolist() == [1, 0]
    assert imported.samples["source"].tolist() == ["snli-a", "snli-b"]


def test_a_run_exported_to_cartography_reads_back_with_the_same_correctness_and_predictions(runs, tmp_path):
    arrays = runs[("vit", 1)]
    path = tmp_path / "traces.npz"
    io.save_npz(path, arrays)
    written = export.export_cartography(path, tmp_path / "export" / "vit" / "seed1")
    folder = tmp_path / "export" / "vit" / "seed1" / "training_dynamics"
    fine = arrays["t"] >= 0
    assert written == [folder / f"dynamics_epoch_{t}.jsonl" for t in range(int(fine.sum()))]
    assert sorted(os.listdir(folder)) == sorted(
        p.name for p in written
    )  # nothing else: cartography counts files
    got = importer.read_source(
        {"format": "cartography", "path": str(tmp_path / "export"), "folders": {"vit/seed1": str(folder)}}
    ).runs[("vit", 1)]
    assert np.array_equal(got["correct"], arrays["correct"][:, fine])
    assert np.array_equal(got["pred"], arrays["pred"][:, fine])
    np.testing.assert_allclose(got["p_true"], arrays["p_true"][:, fine], rtol=1e-5, atol=1e-7)


def test_cartography_run_folders_are_named_arch_and_seed_or_the_setting_run(tmp_path):
    for name in ("resnet18/seed0", "deit_small_seed2"):
        write_jsonl(tmp_path / "a" / name / "training_dynamics" / "dynamics_epoch_0.jsonl", [])
    assert [r[:2] for r in imports.cartography_runs(tmp_path / "a", "mine")] == [
        ("deit_small", 2),
        ("resnet18", 0),
    ]
    write_jsonl(tmp_path / "b" / "my_run" / "dynamics_epoch_0.jsonl", [])
    with pytest.raises(ConfigError, match=r"my_run is not named <arch>/seed<seed>"):
        imports.cartography_runs(tmp_path / "b", "mine")
    write_jsonl(tmp_path / "c" / "dynamics_epoch_0.jsonl", [])
    with pytest.raises(ConfigError, match="datasets.mine.run' is needed"):
        imports.cartography_runs(tmp_path / "c", "mine")
    assert imports.cartography_runs(tmp_path / "c", "mine", ("cnn", 4))[0][:2] == ("cnn", 4)


# ------------------------------------------------------------------ bad input


def _table_case(runs, tmp_path, change) -> Path:
    table = long_table({k: runs[k] for k in RUNS[:2]})
    path = tmp_path / "bad.csv"
    change(table).to_csv(path, index=False)
    return path


def _drop_epoch(t):
    return t.drop(
        index=t.index[(t["sample_id"] == 5) & (t["t"] == 3) & (t["seed"] == 1) & (t["split"] == "train")]
    )


def _set(t, row, col, value):
    t = t.copy()
    t[col] = t[col].astype(object)
    t.loc[row, col] = value
    return t


TABLE_ERRORS = {
    "missing column": (
        lambda t: t.drop(columns=["correct"]),
        r"bad.csv: missing column 'correct' \(the table has",
    ),
    "correct not 0/1": (
        lambda t: _set(t, 41, "correct", 2),
        r"bad.csv, row 42 \(line 43\): column 'correct' has ",
    ),
    "duplicate row": (
        lambda t: pd.concat([t.iloc[:40], t.iloc[[3]], t.iloc[40:]]),
        r"bad.csv, row 4 \(line 5\) and row 41 \(line 42\): run cnn/seed0, train sample_id 0 at t = 1 "
        "appears twice",
    ),
    "missing epoch": (
        _drop_epoch,
        r"bad.csv: run cnn/seed1 has no row for train sample_id 5 at t = 3, an epoch 79 "
        "other train sample\\(s\\) of the run have",
    ),
    "too few epochs": (
        lambda t: t[t["t"] <= 1],
        r"bad.csv: run cnn/seed0 has 2 epoch\(s\) at t >= 0 \(t = \[0, 1\]\); "
        "the decay fits need at least 3",
    ),
    "different samples": (
        lambda t: t[~((t["seed"] == 1) & (t["sample_id"] == 17))],
        r"bad.csv: run cnn/seed1 lacks sample_id 17, which run cnn/seed0 has \(79 and 80 train samples\)",
    ),
    "p_true outside [0, 1]": (
        lambda t: _set(t, 7, "p_true", 1.5),
        r"bad.csv, row 8 \(line 9\): column 'p_true' has 1.5",
    ),
    "bad run key": (
        lambda t: t.assign(run="cnn0").drop(columns=["arch", "seed"]),
        r"bad.csv, row 1 \(line 2\): column 'run' has 'cnn0', not a run key <arch>/seed<seed>",
    ),
    "split": (
        lambda t: _set(t, 9, "split", "test"),
        r"bad.csv, row 10 \(line 11\): column 'split' has 'test'",
    ),
}


@pytest.mark.parametrize("case", TABLE_ERRORS)
def test_a_bad_long_table_gets_one_line_naming_file_row_and_column_and_nothing_is_written(
    runs, tmp_path, case
):
    change, message = TABLE_ERRORS[case]
    path = _table_case(runs, tmp_path, change)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=message) as err:
        importer.import_dataset(
            {"format": "table", "path": str(path)}, outputs(out, RUNS[:2]), out / "manifest.csv"
        )
    assert "\n" not in str(err.value)
    assert files_under(out) == []


def _cartography_case(tmp_path, change) -> Path:
    root = tmp_path / "dyn"
    for seed in (0, 1):
        for k in range(4):
            records = [
                {"guid": g, f"logits_epoch_{k}": [0.1 * g, 0.2 * k, 0.0], "gold": g % 3} for g in range(6)
            ]
            write_jsonl(root / "cnn" / f"seed{seed}" / f"dynamics_epoch_{k}.jsonl", records)
    change(root)
    return root


def _replace_line(path: Path, n: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[n - 1] = text
    path.write_text("\n".join(lines) + "\n")


CARTOGRAPHY_ERRORS = {
    "not JSON": (
        lambda r: _replace_line(
            r / "cnn/seed1/dynamics_epoch_2.jsonl", 4, '{"guid": 3, "logits_epoch_2": [1,'
        ),
        r"seed1/dynamics_epoch_2.jsonl, line 4: not JSON \(",
    ),
    "wrong length": (
        lambda r: _replace_line(
            r / "cnn/seed0/dynamics_epoch_3.jsonl", 2, '{"guid": 1, "logits_epoch_3": [0.1, 0.2], "gold": 1}'
        ),
        r"seed0/dynamics_epoch_3.jsonl, line 2: guid 1 has 2 logits, expected 3",
    ),
    "missing sample": (
        lambda r: _replace_line(r / "cnn/seed0/dynamics_epoch_1.jsonl", 5, ""),
        r"seed0/dynamics_epoch_1.jsonl: no line for guid 4, which dynamics_epoch_0.jsonl has",
    ),
    "missing epoch file": (
        lambda r: (r / "cnn/seed1/dynamics_epoch_1.jsonl").unlink(),
        r"seed1: dynamics_epoch_1.jsonl is missing",
    ),
    "too few epochs": (
        lambda r: [(r / f"cnn/seed{s}/dynamics_epoch_3.jsonl").unlink() for s in (0, 1)],
        r"seed0: run cnn/seed0 has 3 epoch file\(s\), 2 at t >= 0 \(t0_epoch 1\)",
    ),
    "different samples": (
        lambda r: [_replace_line(r / f"cnn/seed1/dynamics_epoch_{k}.jsonl", 6, "") for k in range(4)],
        r"seed1: run cnn/seed1 lacks sample 5, which run cnn/seed0 has \(5 and 6 samples\)",
    ),
    "repeated guid": (
        lambda r: _replace_line(
            r / "cnn/seed0/dynamics_epoch_0.jsonl", 3, '{"guid": 1, "logits_epoch_0": [0, 0, 1], "gold": 1}'
        ),
        r"seed0/dynamics_epoch_0.jsonl: guid 1 appears twice",
    ),
}


@pytest.mark.parametrize("case", CARTOGRAPHY_ERRORS)
def test_a_bad_cartography_folder_gets_one_line_naming_file_and_line_and_nothing_is_written(tmp_path, case):
    change, message = CARTOGRAPHY_ERRORS[case]
    root = _cartography_case(tmp_path, change)
    spec = {"source": "traces", "path": str(root), "t0_epoch": 1 if case == "too few epochs" else None}
    out = tmp_path / "out"
    with pytest.raises(DataError, match=message) as err:
        importer.import_dataset(
            imports.settings_of(spec, "mine"), outputs(out, [("cnn", 0), ("cnn", 1)]), out / "manifest.csv"
        )
    assert "\n" not in str(err.value)
    assert files_under(out) == []


def test_a_write_that_fails_halfway_leaves_no_run_of_the_import_behind(runs, tmp_path):
    path = tmp_path / "t.parquet"
    io.save_table(path, long_table(runs))
    out = outputs(tmp_path / "runs", runs)
    Path(out["vit/seed1"]).mkdir(parents=True)  # a folder where the last run's file goes: its write fails
    with pytest.raises(StorageError, match="vit/seed1/traces.npz: Is a directory"):
        importer.import_dataset({"format": "table", "path": str(path)}, out, tmp_path / "manifest.csv")
    assert [p for p in files_under(tmp_path / "runs")] == [] and not (tmp_path / "manifest.csv").exists()


def test_the_import_script_prints_one_line_and_exits_1(runs, tmp_path):
    path = _table_case(runs, tmp_path, TABLE_ERRORS["correct not 0/1"][0])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/import_traces.py"),
            str(path),
            "--out",
            str(tmp_path / "out"),
            "--manifest",
            str(tmp_path / "out/manifest.csv"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.csv, row 42 (line 43): column 'correct'" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ the config and later stages


def traces_config(path, **more) -> dict:
    return {
        "grid": {"datasets": ["mine"]},
        "datasets": {"mine": {"source": "traces", "path": str(path), **more}},
    }


def test_a_study_of_imported_runs_needs_no_grid_archs_or_seeds_but_a_trained_dataset_does(tmp_path):
    (tmp_path / "t.csv").write_text("run,sample_id,epoch,correct\n")
    config = validate_config(traces_config(tmp_path / "t.csv"), check_models=False)
    assert config["grid"]["archs"] == [] and config["archs"] == {}
    config = traces_config(tmp_path / "t.csv")
    config["grid"]["datasets"].append("digits")
    config["datasets"]["digits"] = {"source": "digits"}
    with pytest.raises(ConfigError, match="'grid.archs' is missing: dataset 'digits' is trained here"):
        validate_config(config, check_models=False)
    config = traces_config(tmp_path / "t.csv", run="cnn/seed0")
    config["sampler"] = {"datasets": ["mine"]}
    with pytest.raises(ConfigError, match=r"'sampler.datasets\[0\]': 'mine' has source: traces"):
        validate_config(config, check_models=False)
    with pytest.raises(ConfigError, match="datasets.mine.path"):
        validate_config(traces_config(tmp_path / "none.csv"), check_models=False)


def test_later_stages_say_not_comparable_with_the_reason_where_the_import_lacks_a_field(runs, tmp_path):
    table = long_table(runs)
    table = table[table["split"] == "train"].drop(columns=["loss", "pred", "el2n"])
    path = tmp_path / "t.parquet"
    io.save_table(path, table)
    out = outputs(tmp_path / "runs", runs)
    importer.import_dataset({"format": "table", "path": str(path)}, out, tmp_path / "manifest.csv")
    keys = list(runs)
    fits = [fit_table(load_traces(out[imports.run_key(*k)]), ["since_learned_soft"]) for k in keys]
    infos = [stats.class_info_from_traces(np.load(out[imports.run_key(*k)])) for k in keys]
    cfg = stats.StatsConfig(bootstrap=20, permutations=20, tie_draws=5)
    summary = stats.dataset_tables(fits, keys, cfg, "mine", "since_learned", infos)["summary"]
    notes = dict(zip(summary["id"] + " " + summary["case"], summary["note"]))
    assert math.isnan(summary.loc[summary["id"] == "F5.meta", "value"].iloc[0])
    assert notes["F5.meta "] == "no loss at t = 0 in the runs' traces (not recorded)"
    assert (
        notes["F4.similarity held-out confusion"]
        == "no held-out predictions in the runs' traces (not recorded)"
    )
    assert (
        notes["F4.similarity centroid cosine"]
        == "no class-centroid cosine in the runs' traces (not recorded)"
    )
    assert notes["Runs.accuracy "] == "no held-out samples in the runs' traces (not recorded)"
    assert notes["Scores.vs_rank_score el2n_t0"] == "no el2n_t0 in the runs' traces (not recorded)"
    assert np.isfinite(summary.loc[summary["id"] == "F1.difference", "value"]).all()


def test_the_f6_rows_of_a_traces_dataset_are_not_comparable_with_the_reason():
    rows = importer.not_comparable_summary("F6", "mine", "since_learned", ["cnn", "vit"], "no images")
    assert sorted(set(rows["id"])) == ["F6.heldout", "F6.retention"] and len(rows) == 4
    assert rows["value"].isna().all() and (rows["note"] == "no images").all()
    assert list(rows.columns) == stats.summary_columns()


def test_the_schema_offers_every_source_of_retention_data_and_traces_among_them():
    from retention.acquire import listing
    from retention.config import load_schema

    sources = load_schema()["properties"]["datasets"]["additionalProperties"]["properties"]["source"]["enum"]
    assert sources == list(listing.SOURCES) and imports.SOURCE in sources
    with pytest.raises(DataError, match="source 'traces' has no images to list"):
        listing.list_samples("traces", "somewhere")
