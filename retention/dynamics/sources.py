"""Datasets of runs recorded elsewhere (``source: traces``): what the workflow needs when it
parses (docs/contracts.md "Imported runs").

A traces dataset names, with ``datasets.<name>.path``, either a long table (``.parquet`` or
``.csv``: one row per run, sample and epoch; :mod:`retention.dynamics.longtable`) or a folder of
dataset-cartography runs (folders of ``dynamics_epoch_<k>.jsonl`` files;
:mod:`retention.dynamics.cartography`). Its runs, the (arch, seed) keys every later stage uses,
come from the data: the table's ``run`` column (``<arch>/seed<seed>``) or its ``arch`` and
``seed`` columns; the cartography folders' paths below ``path`` (``<arch>/seed<seed>``,
``<arch>_seed<seed>``, a trailing ``training_dynamics`` dropped); or, for a table without
run columns or a folder that is one run, the setting ``datasets.<name>.run``.

Light on purpose (the standard library at import; pyarrow or pandas only to read a
table's run columns, once per file version): the workflow calls it at parse time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from retention.errors import ConfigError, DataError

SOURCE = "traces"
FORMATS = ("table", "cartography")
TABLE_SUFFIXES = (".parquet", ".csv")
#: cartography's file of one epoch (``dynamics_epoch_<k>.jsonl``), and its run sub-folder
DYNAMICS_FILE = re.compile(r"^dynamics_epoch_(?P<epoch>\d+)\.jsonl$")
DYNAMICS_FOLDER = "training_dynamics"
#: a run key: ``<arch>/seed<seed>`` (also ``<arch>_seed<seed>``, ``<arch>-seed<seed>`` in folder names)
RUN_KEY = re.compile(r"^(?P<arch>[A-Za-z0-9_-]+?)[/_-]seed(?P<seed>\d+)$")
RUN_KEY_FORM = "<arch>/seed<seed>"


def is_imported(config: dict, dataset: str) -> bool:
    """Whether ``dataset`` holds runs recorded elsewhere (``source: traces``)."""
    return config.get("datasets", {}).get(dataset, {}).get("source") == SOURCE


def run_key(arch: str, seed: int) -> str:
    """``cnn/seed0``: how a run is named in tables, folders and messages."""
    return f"{arch}/seed{int(seed)}"


def parse_run_key(text: str) -> tuple[str, int] | None:
    """(arch, seed) of ``<arch>/seed<seed>`` (or ``_seed``, ``-seed``); None if it is not one."""
    m = RUN_KEY.match(str(text).strip())
    return (m["arch"], int(m["seed"])) if m else None


def setting_run(spec: dict, name: str) -> tuple[str, int] | None:
    """The run of the setting ``datasets.<name>.run`` (None when unset)."""
    text = spec.get("run")
    if text is None:
        return None
    key = parse_run_key(text)
    if key is None:
        raise ConfigError(
            f"config key 'datasets.{name}.run': {text!r} is not a run key {RUN_KEY_FORM}, e.g. resnet18/seed0"
        )
    return key


def source_format(spec: dict, name: str) -> str:
    """``table`` or ``cartography``: the setting ``format``, else from ``path`` (a file with a
    table suffix, or a folder)."""
    path = Path(spec["path"])
    fmt = spec.get("format", "auto")
    if fmt == "auto":
        if path.is_dir():
            return "cartography"
        if path.suffix in TABLE_SUFFIXES:
            return "table"
        raise ConfigError(
            f"config key 'datasets.{name}.path': {path} is neither a folder of cartography runs nor a "
            f"table ({', '.join(TABLE_SUFFIXES)}); set datasets.{name}.format"
        )
    if fmt == "cartography" and not path.is_dir():
        raise ConfigError(f"config key 'datasets.{name}.path': {path} is not a folder (format: cartography)")
    if fmt == "table" and not path.is_file():
        raise ConfigError(f"config key 'datasets.{name}.path': {path} is not a file (format: table)")
    return fmt


# ------------------------------------------------------------------ cartography folders


def dynamics_files(folder: str | os.PathLike) -> list[Path]:
    """The ``dynamics_epoch_<k>.jsonl`` files of one run folder, by epoch."""
    folder = Path(folder)
    found = [(int(m["epoch"]), folder / f) for f in os.listdir(folder) if (m := DYNAMICS_FILE.match(f))]
    return [p for _, p in sorted(found)]


def cartography_runs(
    path: str | os.PathLike, name: str, run: tuple[str, int] | None = None
) -> list[tuple[str, int, Path]]:
    """(arch, seed, folder) of every run folder below ``path`` (a folder holding
    ``dynamics_epoch_<k>.jsonl`` files), sorted by arch and seed."""
    root = Path(path)
    folders = sorted({Path(d) for d, _, files in os.walk(root) if any(DYNAMICS_FILE.match(f) for f in files)})
    if not folders:
        raise ConfigError(
            f"config key 'datasets.{name}.path': {root} holds no dynamics_epoch_<k>.jsonl files "
            "(dataset cartography's training dynamics, one folder per run)"
        )
    runs = []
    for folder in folders:
        rel = folder.relative_to(root).as_posix()
        if rel.endswith(DYNAMICS_FOLDER):
            rel = rel[: -len(DYNAMICS_FOLDER)].rstrip("/")
        if rel in ("", "."):
            if run is None:
                raise ConfigError(
                    f"config key 'datasets.{name}.run' is needed: {root} is itself one run's folder, and "
                    f"its name does not say which (set run: {RUN_KEY_FORM}, e.g. resnet18/seed0)"
                )
            key = run
        else:
            key = parse_run_key(rel)
            if key is None:
                raise ConfigError(
                    f"config key 'datasets.{name}.path': the run folder {folder} is not named "
                    f"{RUN_KEY_FORM} (or <arch>_seed<seed>) below {root}, so its architecture and seed are "
                    "unknown"
                )
        runs.append((key[0], key[1], folder))
    seen: dict = {}
    for arch, seed, folder in runs:
        if (arch, seed) in seen:
            raise ConfigError(
                f"config key 'datasets.{name}.path': run {run_key(arch, seed)} has two folders, "
                f"{seen[(arch, seed)]} and {folder}"
            )
        seen[(arch, seed)] = folder
    return sorted(runs, key=lambda r: (r[0], r[1]))


# ------------------------------------------------------------------ long tables


def table_columns(path: str | os.PathLike) -> list[str]:
    """The column names of a long table (read from its schema or header only)."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        import pandas as pd

        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as err:  # any reader error: the file is not a table
        raise DataError(f"{path}: not a readable {path.suffix} table ({type(err).__name__}: {err})") from err


@functools.lru_cache(maxsize=16)
def _table_runs(path: str, version: tuple, run: tuple[str, int] | None) -> tuple[tuple[str, int], ...]:
    columns = table_columns(path)
    if "run" in columns or {"arch", "seed"} <= set(columns):
        import pandas as pd

        use = ["run"] if "run" in columns else ["arch", "seed"]
        if path.endswith(".parquet"):
            table = pd.read_parquet(path, columns=use)
        else:  # pyarrow's reader converts only these columns, as text in dictionaries
            import pyarrow as pa
            import pyarrow.csv as pcsv

            text = pa.dictionary(pa.int32(), pa.string())
            options = pcsv.ConvertOptions(
                include_columns=use, column_types={c: text for c in use}, strings_can_be_null=False
            )
            table = pcsv.read_csv(path, convert_options=options).to_pandas()
        keys = table.drop_duplicates()
        out = []
        for i, row in enumerate(keys.itertuples(index=False)):
            if use == ["run"]:
                key = parse_run_key(row.run)
                if key is None:
                    raise DataError(
                        f"{path}, row {int(keys.index[i]) + 1}: column 'run' has {row.run!r}, not a run key "
                        f"{RUN_KEY_FORM}"
                    )
            else:
                seed = str(row.seed).strip()
                if not re.fullmatch(r"\d+(\.0)?", seed) or not re.fullmatch(r"[A-Za-z0-9_-]+", str(row.arch)):
                    raise DataError(
                        f"{path}, row {int(keys.index[i]) + 1}: arch {row.arch!r} and seed {row.seed!r} do "
                        "not "
                        "name a run (arch: letters, digits, _ and -; seed: an integer >= 0)"
                    )
                key = (str(row.arch), int(float(seed)))
            out.append(key)
        return tuple(dict.fromkeys(out))
    if run is None:
        raise DataError(
            f"{path}: missing column 'run' (or 'arch' and 'seed'), and datasets.<name>.run is not set; "
            f"name each row's run ({RUN_KEY_FORM}) or set the one run of the table"
        )
    return (run,)


def table_runs(
    path: str | os.PathLike, run: tuple[str, int] | None = None, cache_dir=None
) -> list[tuple[str, int]]:
    """(arch, seed) of every run of a long table, in order of first appearance (the export
    writes the grid's order); the setting ``run`` for a table without run columns.

    With ``cache_dir`` (the config's train.cache_dir, where the config check keeps timm's
    model names) the answer is kept in ``<cache_dir>/imports/`` under a key of the file's
    path, size and modification time: a large table is read once, not whenever the
    workflow starts (every cluster job starts it); a changed file gets a new key.
    """
    p = Path(path)
    stat = p.stat()
    version = (stat.st_mtime_ns, stat.st_size)
    cached = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps([str(p.resolve()), *version, run]).encode()).hexdigest()[:20]
        cached = Path(cache_dir) / "imports" / f"{key}.json"
        try:
            return [(str(a), int(s)) for a, s in json.loads(cached.read_text())["runs"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no usable cache entry: read the table
    runs = list(_table_runs(str(p), version, run))
    if cached is not None:
        _write_cache(cached, {"path": str(p.resolve()), "runs": runs})
    return runs


def _write_cache(path: Path, content: dict) -> None:
    """Write a cache entry atomically; a cache that cannot be written is only a slower start."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(content, fh)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# ------------------------------------------------------------------ the workflow's view


def imported_runs(spec: dict, name: str, cache_dir=None) -> list[tuple[str, int]]:
    """(arch, seed) of every run of a traces dataset (see the module docstring)."""
    run = setting_run(spec, name)
    if source_format(spec, name) == "cartography":
        return [(a, s) for a, s, _ in cartography_runs(spec["path"], name, run)]
    try:
        return table_runs(spec["path"], run, cache_dir)
    except DataError as err:
        raise ConfigError(f"config key 'datasets.{name}.path': {err}") from None


def dataset_runs(config: dict, dataset: str) -> list[tuple[str, int]]:
    """(arch, seed) of every run of a dataset: the import's for a traces dataset, else the
    grid's architectures times its seeds (arch-major, in config order)."""
    if is_imported(config, dataset):
        return imported_runs(config["datasets"][dataset], dataset, config.get("train", {}).get("cache_dir"))
    grid = config["grid"]
    return [(arch, seed) for arch in grid.get("archs", []) for seed in grid.get("seeds", [])]


def import_files(config: dict, dataset: str) -> dict[str, list[str]]:
    """The files a traces dataset's import reads: ``table`` (one file) or ``dynamics``
    (every run folder's epoch files, run by run), and ``centroids`` where set."""
    spec = config["datasets"][dataset]
    files: dict[str, list[str]] = {}
    if source_format(spec, dataset) == "cartography":
        run = setting_run(spec, dataset)
        files["dynamics"] = [
            str(f)
            for _, _, folder in cartography_runs(spec["path"], dataset, run)
            for f in dynamics_files(folder)
        ]
    else:
        files["table"] = [str(spec["path"])]
    if spec.get("class_centroid_cosine"):
        files["centroids"] = [str(spec["class_centroid_cosine"])]
    return files


def import_settings(config: dict, dataset: str) -> dict:
    """What the import job needs besides its files (rule import_traces' params)."""
    return settings_of(config["datasets"][dataset], dataset)


def settings_of(spec: dict, dataset: str) -> dict:
    """:func:`import_settings` of one dataset entry (``path``, ``format``, ``run``,
    ``t0_epoch``, ``class_names``)."""
    fmt = source_format(spec, dataset)
    settings = {
        "format": fmt,
        "path": str(spec["path"]),
        "run": spec.get("run"),
        "t0_epoch": spec.get("t0_epoch"),
        "class_names": spec.get("class_names"),
    }
    if fmt == "cartography":
        run = setting_run(spec, dataset)
        settings["folders"] = {
            run_key(a, s): str(f) for a, s, f in cartography_runs(spec["path"], dataset, run)
        }
    return settings
