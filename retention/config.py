"""Configuration checks: the JSON schema, then what a schema cannot say.

``validate_config`` raises one ConfigError whose message names the key (as a dotted
path) and the value at fault. The workflow calls it before any job runs, whenever it
parses the workflow: so this module imports neither torch nor pandas nor timm.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from retention.errors import ConfigError

if TYPE_CHECKING:  # imported where a config is validated: most jobs only read defaults
    import jsonschema

# digits_lt (retention.acquire.data) keeps DIGITS_LT_SMALLEST images of its smallest class and at
# most every image of digits' smallest class in its largest: defined here, because parsing
# the workflow validates the config and should not import pandas with retention.acquire.data
DIGITS_MIN_CLASS = 174  # images in scikit-learn digits' smallest class
DIGITS_LT_SMALLEST = 3
DIGITS_LT_MAX_RATIO = DIGITS_MIN_CLASS / DIGITS_LT_SMALLEST
SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
#: PyYAML's safe loader, its C implementation where available (the same documents, faster)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: the values of archs.<arch>.weights that are not a file path
WEIGHTS_KINDS = ("pretrained", "pretrain", "none")


@functools.cache
def load_schema(path: str | os.PathLike = SCHEMA) -> dict:
    """The JSON schema (read once per process, with libyaml's parser where PyYAML has it:
    every job that reads a default reads the schema)."""
    return yaml.load(Path(path).read_text(), Loader=SAFE_LOADER)


def run_only_train_keys() -> tuple[str, ...]:
    """``train`` keys marked ``run_only`` in the schema: they change how a run executes,
    not its results, so the rules keep them out of their params (changing them reruns
    nothing) and checkpoints ignore them."""
    return tuple(k for k, spec in schema_entry("train")["properties"].items() if spec.get("run_only"))


def study_fields(config: Mapping, archs: Sequence[str] | None = None) -> dict:
    """What the findings need from a (filled-in) config (retention.findings.Study's fields):
    each grid dataset's source, each architecture's timm model and display name, alpha.
    ``archs``: default the grid's (an imported dataset's runs may add others, named by their
    key)."""
    archs = list(config["grid"]["archs"]) if archs is None else list(archs)
    entry = {a: config["archs"].get(a, {}) for a in archs}
    return {
        "sources": {d: config["datasets"][d]["source"] for d in config["grid"]["datasets"]},
        "models": {a: entry[a].get("model", a) for a in archs},
        "labels": {a: entry[a].get("label", a) for a in archs},
        "alpha": float(config["stats"]["alpha"]),
    }


def display_only_arch_keys() -> tuple[str, ...]:
    """``archs.<arch>`` keys marked ``display_only`` in the schema (the name shown in
    figures): no training or fitting job reads them, so changing one redraws the figures,
    the findings and the report only."""
    return tuple(
        k for k, spec in schema_entry("archs", "*")["properties"].items() if spec.get("display_only")
    )


def result_arch_params(config: dict, arch: str) -> dict:
    """An ``archs`` entry without its display-only keys (the training jobs' params)."""
    hidden = display_only_arch_keys()
    return {k: v for k, v in config["archs"][arch].items() if k not in hidden}


def result_train_params(config: dict) -> dict:
    """The config's ``train`` section without the run-only keys (a rule's params)."""
    run_only = run_only_train_keys()
    return {k: v for k, v in config["train"].items() if k not in run_only}


def schema_entry(*keys: str) -> dict:
    """The schema's entry of a config key, by its path (``"stats", "rank_score"``; ``"*"`` for
    an entry of a mapping such as ``datasets.<name>``), its ``$ref`` resolved."""
    spec = _resolve(load_schema())
    for key in keys:
        spec = _resolve(spec["additionalProperties"] if key == "*" else spec["properties"][key])
    return spec


def schema_default(*keys: str):
    """The default of a config key (:func:`schema_entry`): the one place a default is written."""
    return copy.deepcopy(schema_entry(*keys)["default"])


def section_defaults(*keys: str) -> dict:
    """A config section (``"stats"``) with every key at its schema default."""
    return fill_defaults({}, schema_entry(*keys))


def schema_choices(*keys: str) -> tuple:
    """The values a config key may take (its schema ``enum``)."""
    return tuple(schema_entry(*keys)["enum"])


def default_trace_label() -> str:
    """The primary trace label of the schema's defaults (``retention``: trace, soft,
    learned_after): what a script without a config uses."""
    from retention.fitting.labels import trace_label

    r = section_defaults("retention")
    return trace_label(r["trace"], r["soft"], r["learned_after"])


def _resolve(spec: dict) -> dict:
    """A schema entry with its ``$ref`` ("#/$defs/<name>") laid under its own keys."""
    if "$ref" not in spec:
        return spec
    return {**load_schema()["$defs"][spec["$ref"].rsplit("/", 1)[-1]], **spec}


def fill_defaults(instance: dict, schema: dict) -> dict:
    """Add the schema's ``default`` of every absent property of ``instance``, recursively
    into objects and into the entries of mappings (``datasets.<name>``, ``archs.<name>``);
    returns ``instance`` (changed in place)."""
    for key, spec in schema.get("properties", {}).items():
        spec = _resolve(spec)
        if key not in instance and "default" in spec:
            instance[key] = copy.deepcopy(spec["default"])
        if isinstance(instance.get(key), dict):
            fill_defaults(instance[key], spec)
    entry = schema.get("additionalProperties")
    if isinstance(entry, dict) and "properties" in entry:
        for value in instance.values():
            if isinstance(value, dict):
                fill_defaults(value, entry)
    return instance


# train keys a pretraining run does not use (the pretrain section has its own epochs,
# learning rate and augmentation): rule pretrain keeps them out of its params
PRETRAIN_UNUSED_TRAIN_KEYS = ("warmup_epochs", "epochs", "head_lr", "augment")


def pretrain_train_params(config: dict) -> dict:
    """The ``train`` settings a pretraining run uses (rule pretrain's params)."""
    return {k: v for k, v in result_train_params(config).items() if k not in PRETRAIN_UNUSED_TRAIN_KEYS}


#: a number as YAML 1.2 writes it (``3e-3``, ``.5``, ``1E6``); PyYAML follows YAML 1.1, which
#: wants a dot in a float (``3.0e-3``) and reads ``3e-3`` as the string '3e-3'
_YAML12_NUMBER = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _types(spec: dict) -> set[str]:
    """The JSON types a schema entry allows (through ``$ref``, ``anyOf`` and ``oneOf``)."""
    spec = _resolve(spec)
    kinds = spec.get("type", [])
    out = {kinds} if isinstance(kinds, str) else set(kinds)
    for branch in spec.get("anyOf", []) + spec.get("oneOf", []):
        out |= _types(branch)
    return out


def _as_number(value, spec: dict):
    """``value`` as a number when it is a string written as one and the schema entry
    ``spec`` wants a number (or an integer, and it is whole), or leaves the type open
    (a free-form mapping's values); else ``value``."""
    if not isinstance(value, str) or not _YAML12_NUMBER.match(value.strip()):
        return value
    kinds, number = _types(spec), float(value)
    if "number" in kinds or not (kinds or "enum" in _resolve(spec) or "pattern" in _resolve(spec)):
        return number
    if "integer" in kinds and "string" not in kinds and number.is_integer():
        return int(number)
    return value


def coerce_numbers(instance, schema: dict | None = None):
    """Numbers written the YAML 1.2 way (``lr: 3e-3``), which PyYAML (YAML 1.1, used by
    Snakemake and by :func:`load_config`) reads as strings, become numbers wherever the
    schema wants a number (or leaves the type open, as in ``model_kwargs``); returns
    ``instance`` (changed in place)."""
    schema = _resolve(schema if schema is not None else load_schema())
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            spec = props.get(key, extra if isinstance(extra, dict) else None)
            if spec is None and not props and extra is None and "object" in _types(schema):
                spec = {}  # a free-form mapping (model_kwargs)
            if spec is None:
                continue
            instance[key] = _as_number(value, spec)
            coerce_numbers(instance[key], spec)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(instance):
            instance[i] = _as_number(value, schema["items"])
            coerce_numbers(instance[i], schema["items"])
    return instance


def suggest(name, known) -> str:
    """``; did you mean 'x'?`` for the closest of ``known`` to ``name`` (difflib), else ''."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


_TYPE_HINTS = {
    "number": "a number such as 0.003 or 3e-3",
    "integer": "a whole number such as 30",
    "boolean": "true or false",
    "string": 'text (quote it: "...")',
    "array": "a list such as [a, b]",
    "object": "a mapping such as {key: value}",
    "null": "null",
}


def _type_message(key: str, error: jsonschema.ValidationError) -> str:
    """A wrong type: what was read (value and its YAML type) and how to write it."""
    wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    read = {
        str: "text",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(error.instance), type(error.instance).__name__)
    how = " or ".join(_TYPE_HINTS.get(t, t) for t in wanted)
    return (
        f"config key '{key}': {error.instance!r} is not of type {' or '.join(map(repr, wanted))} "
        f"(read as {read}); write {how}"
    )


def _key(path) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def _message(error: jsonschema.ValidationError) -> str:
    """One line naming the key and the value at fault."""
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = sorted(set(error.instance) - set(known))
        where = f" under '{key}'" if error.absolute_path else ""
        return f"unknown config key '{extra[0]}'{where}{suggest(extra[0], known)}" if extra else error.message
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        prefix = f"{key}." if error.absolute_path else ""
        return f"config key '{prefix}{missing[0]}' is missing"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        hint = suggest(error.instance, error.validator_value)
        return f"config key '{key}': {error.instance!r} is not one of {allowed}{hint}"
    if error.validator == "type":
        return _type_message(key, error)
    if error.validator == "propertyNames":
        return f"config key '{key}': {error.instance!r} is not a valid name (letters, digits, _ and -)"
    return f"config key '{key}': {error.message}"


def validate_schema(config: dict, schema_path: str | os.PathLike = SCHEMA) -> None:
    """Check ``config`` against the JSON schema; raise ConfigError on the first error."""
    _raise_first_error(load_schema(schema_path), config)


def _raise_first_error(schema: dict, instance: dict) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_message(best))


def fill_section(values: Mapping, *path: str) -> dict:
    """A copy of ``values``, the config's section at ``path`` (``("train",)``), with numbers
    written the YAML 1.2 way coerced, every absent key given the schema's default, and
    checked against the schema: ConfigError naming the key (``train.compile_mode``) and
    the value at fault. Where a dataclass takes a section, it takes it from here, so
    each default and each allowed value is written once, in the schema."""
    spec = schema_entry(*path)
    section = fill_defaults(coerce_numbers(copy.deepcopy(dict(values)), spec), spec)
    instance, schema = section, spec
    for key in reversed(path):
        instance, schema = {key: instance}, {"type": "object", "properties": {key: schema}}
    _raise_first_error({"$defs": load_schema().get("$defs", {}), **schema}, instance)
    return section


def validate_references(config: dict, check_models: bool = True) -> None:
    """Cross-key checks: grid names exist, datasets that need a path have one, timm names."""
    _check_imported(config)
    for kind in ("datasets", "archs"):
        for i, name in enumerate(config["grid"][kind]):
            if name not in config[kind]:
                known = ", ".join(sorted(config[kind]))
                raise ConfigError(
                    f"config key 'grid.{kind}[{i}]': {name!r} is not defined under '{kind}' "
                    f"(defined: {known}){suggest(name, config[kind])}"
                )
    for name in config["grid"]["datasets"] + _pretrain_datasets(config):
        spec = config["datasets"][name]
        if spec["source"] in ("imagefolder", "cub200", "octdl", "traces") and not spec.get("path"):
            raise ConfigError(f"config key 'datasets.{name}.path' is needed for source '{spec['source']}'")
        path = spec.get("path")
        if path and not spec.get("download") and not Path(path).exists():
            raise ConfigError(
                f"config key 'datasets.{name}.path': {path} does not exist (resolved from the study "
                f"folder: {Path(path).resolve()}); fix the path, or add a download entry"
            )
        if spec["source"] == "digits_lt" and spec["imbalance_ratio"] > DIGITS_LT_MAX_RATIO:
            raise ConfigError(
                f"config key 'datasets.{name}.imbalance_ratio': {spec['imbalance_ratio']:g} is more than "
                f"digits_lt can give ({DIGITS_LT_MAX_RATIO:g}: {DIGITS_MIN_CLASS} images in digits' "
                f"smallest class / {DIGITS_LT_SMALLEST})"
            )
    for name in config["grid"]["archs"]:
        weights = config["archs"][name]["weights"]
        if weights not in WEIGHTS_KINDS and not Path(weights).is_file():
            raise ConfigError(
                f"config key 'archs.{name}.weights': {weights!r} is not {', '.join(WEIGHTS_KINDS)} or an "
                f"existing weights file (resolved from the study folder: {Path(weights).resolve()})"
                f"{suggest(weights, WEIGHTS_KINDS)}"
            )
    sampler = config["sampler"]
    if sampler["enabled"] and sorted(sampler["kinds"]) != ["random", "spaced"]:
        raise ConfigError(
            f"config key 'sampler.kinds': {sampler['kinds']} - F6 compares the two kinds, so both "
            "'random' and 'spaced' are needed (or set sampler.enabled: false)"
        )
    if sampler["enabled"] and sampler["scout_seed"] in config["grid"]["seeds"]:
        raise ConfigError(
            f"config key 'sampler.scout_seed': {sampler['scout_seed']} is one of the compared "
            "seeds in grid.seeds; the scout run needs a seed outside them"
        )
    train = config["train"]
    if train["compile"] and train["seeds_per_job"] > 1:
        raise ConfigError(
            f"config key 'train.seeds_per_job': {train['seeds_per_job']} with train.compile: true is not "
            "supported (torch.compile of the seed stack); set seeds_per_job: 1 or compile: false"
        )
    for i, name in enumerate(sampler.get("datasets") or []):
        if name not in config["grid"]["datasets"]:
            raise ConfigError(
                f"config key 'sampler.datasets[{i}]': {name!r} is not in grid.datasets"
                f"{suggest(name, config['grid']['datasets'])}"
            )
    if check_models:
        from retention.acquire.model_names import check_model_name, user_cache_dir

        for name in config["grid"]["archs"]:
            try:
                check_model_name(config["archs"][name]["model"], user_cache_dir())
            except ConfigError as err:
                raise ConfigError(f"config key 'archs.{name}.model': {err}") from None


def _check_imported(config: dict) -> None:
    """Datasets of imported runs (source: traces) have no images: the grid's archs and
    seeds are needed only for the others, and no pretraining or sampler (F6) uses them."""
    grid = config["grid"]
    trained = [d for d in grid["datasets"] if config["datasets"].get(d, {}).get("source") != "traces"]
    for key in ("archs", "seeds"):
        if trained and not grid.get(key):
            raise ConfigError(
                f"config key 'grid.{key}' is missing: dataset '{trained[0]}' is trained here (only datasets "
                "with source: traces, runs recorded elsewhere, need none)"
            )
    traces = {d for d, spec in config["datasets"].items() if spec.get("source") == "traces"}
    name = config["pretrain"].get("dataset")
    if name in traces:
        raise ConfigError(
            f"config key 'pretrain.dataset': {name!r} has source: traces (runs recorded elsewhere, no "
            "images); "
            "pretraining needs images"
        )
    for i, name in enumerate(config["sampler"].get("datasets") or []):
        if name in traces:
            raise ConfigError(
                f"config key 'sampler.datasets[{i}]': {name!r} has source: traces (runs recorded elsewhere, "
                "no "
                "images); the sampler comparison (F6) trains new runs"
            )


def _pretrain_datasets(config: dict) -> list[str]:
    """[pretrain.dataset] when a grid arch has ``weights: pretrain``, else []; checks it is defined."""
    users = [a for a in config["grid"]["archs"] if config["archs"][a].get("weights") == "pretrain"]
    if not users:
        return []
    name = config["pretrain"]["dataset"]
    if name not in config["datasets"]:
        raise ConfigError(
            f"config key 'pretrain.dataset': {name!r} is not defined under 'datasets', and arch "
            f"'{users[0]}' has weights: pretrain (set pretrain.dataset to a dataset to pretrain on)"
            f"{suggest(name, config['datasets'])}"
        )
    return [name]


def validate_config(config: dict, check_models: bool = True) -> dict:
    """Schema and reference checks (see the module docstring); fills in the schema's
    defaults of absent keys (train, augment); returns ``config``.

    check_models: check the timm model names (from a name list cached per timm version
    in the user's cache, ``retention.acquire.model_names.user_cache_dir``; building it
    once imports timm).
    """
    coerce_numbers(config)
    validate_schema(config)
    fill_defaults(config, load_schema())
    validate_references(config, check_models)
    return config


def load_config(path: str | os.PathLike, *overlays: str | os.PathLike) -> dict[str, Any]:
    """Read a config file and lay ``overlays`` over it as Snakemake's --configfile does;
    absent settings take the schema's defaults (as in the workflow); numbers written the
    YAML 1.2 way (``3e-3``) are read as numbers where the schema wants one."""
    config = read_yaml(path)
    for overlay in overlays:
        merge(config, read_yaml(overlay))
    return fill_defaults(coerce_numbers(config), load_schema())


def read_yaml(path: str | os.PathLike) -> dict:
    """A config file's mapping; ConfigError naming the file when it cannot be read or is
    not a mapping."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"config file {path} is not readable YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def merge(base: dict, update: dict) -> dict:
    """Recursive dict update in place (lists and scalars replace), like Snakemake's."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base
