import copy
import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from retention.acquire import model_names
from retention.config import (
    fill_defaults,
    load_config,
    load_schema,
    merge,
    result_train_params,
    run_only_train_keys,
    validate_config,
)
from retention.errors import ConfigError

from .conftest import REPO


@pytest.fixture(scope="module")
def paper():
    return load_config(REPO / "config.yaml")


def test_shipped_configs_are_valid(paper):
    validate_config(copy.deepcopy(paper))
    demo = load_config(REPO / "config.yaml", REPO / "config/demo.yaml")
    validate_config(demo)
    assert demo["grid"]["datasets"] == ["digits", "digits_lt"]
    assert len(demo["grid"]["seeds"]) == 3


def test_paper_grid(paper):
    assert paper["grid"]["datasets"] == ["octdl", "cub200"]
    models = [paper["archs"][a]["model"] for a in paper["grid"]["archs"]]
    assert models == ["resnet18.a1_in1k", "deit_small_patch16_224.fb_in1k"]
    assert paper["grid"]["seeds"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda c: c["train"].update(epochs="thirty"),
            "config key 'train.epochs': 'thirty' is not of type 'integer'",
        ),
        (lambda c: c["train"].update(epohcs=3), "unknown config key 'epohcs' under 'train'"),
        (lambda c: c.update(extra=1), "unknown config key 'extra'"),
        (
            lambda c: c["grid"]["datasets"].append("imagenet"),
            "'grid.datasets[2]': 'imagenet' is not defined under 'datasets'",
        ),
        (
            lambda c: c["archs"]["resnet18"].update(model="resnet_nonexistent"),
            "'archs.resnet18.model': 'resnet_nonexistent' is not a timm model",
        ),
        (
            lambda c: c["archs"]["resnet18"].update(model="resnet18.no_such_tag"),
            "no pretrained tag 'no_such_tag'",
        ),
        (
            lambda c: c["retention"].update(trace="since_lunch"),
            "'retention.trace': 'since_lunch' is not one of",
        ),
        (
            lambda c: c["datasets"]["cub200"].update(source="cub"),
            "'datasets.cub200.source': 'cub' is not one of",
        ),
        (lambda c: c["sampler"].update(scout_seed=2), "'sampler.scout_seed': 2 is one of the compared seeds"),
        (lambda c: c.pop("grid"), "config key 'grid' is missing"),
        (
            lambda c: c["datasets"].update(octdl={"source": "imagefolder", "path": "no/such/folder"}),
            "'datasets.octdl.path': no/such/folder does not exist (resolved from the study folder: /",
        ),
        (
            lambda c: c["sampler"].update(kinds=["spaced"]),
            "'sampler.kinds': ['spaced'] - F6 compares the two kinds",
        ),
        (
            lambda c: c["train"].update(compile_mode="fastest"),
            "'train.compile_mode': 'fastest' is not one of",
        ),
        (
            lambda c: c["train"].update(compile=True, seeds_per_job=3),
            "'train.seeds_per_job': 3 with train.compile: true is not supported",
        ),
        (
            lambda c: c["train"].update(seeds_per_job=0),
            "'train.seeds_per_job': 0 is less than the minimum of 1",
        ),
        (
            lambda c: c["datasets"]["octdl"].update(source="digits_lt", imbalance_ratio=100.0),
            "'datasets.octdl.imbalance_ratio': 100 is more than digits_lt can give (58",
        ),
        # a type error says what was read and how to write it
        (
            lambda c: c["archs"]["resnet18"].update(lr="3e-3x"),
            (
                "config key 'archs.resnet18.lr': '3e-3x' is not of type 'number' (read as text); "
                "write a number such "
                "as 0.003 or 3e-3"
            ),
        ),
        (
            lambda c: c["train"].update(epochs=2.5),
            "'train.epochs': 2.5 is not of type 'integer' (read as a number); "
            "write a whole number such as 30",
        ),
        # a misspelt key or name gets the closest known one
        (
            lambda c: c["train"].update(warmup_epoch=2),
            "unknown config key 'warmup_epoch' under 'train'; did you mean 'warmup_epochs'?",
        ),
        (lambda c: c.update(sampeler={}), "unknown config key 'sampeler'; did you mean 'sampler'?"),
        (
            lambda c: c["grid"]["datasets"].append("cub"),
            (
                "'grid.datasets[2]': 'cub' is not defined under 'datasets' "
                "(defined: cub200, digits, digits_lt, glyphs, "
                "octdl); did you mean 'cub200'?"
            ),
        ),
        (lambda c: c["grid"]["archs"].append("resnet_18"), "did you mean 'resnet18'?"),
        (lambda c: c["datasets"]["cub200"].update(source="imagefolders"), "did you mean 'imagefolder'?"),
        (
            lambda c: c["archs"]["resnet18"].update(model="resnet81"),
            "'archs.resnet18.model': 'resnet81' is not a timm model name (see timm.list_models()); "
            "did you mean 'resnet18'?",
        ),
        (
            lambda c: c["archs"]["resnet18"].update(model="resnet18.a1_in1kk"),
            "has no pretrained tag 'a1_in1kk' (its tags: a1_in1k,",
        ),
        (
            lambda c: c["archs"]["resnet18"].update(weights="pretrian"),
            (
                "'archs.resnet18.weights': 'pretrian' is not pretrained, pretrain, none or an existing "
                "weights file "
                "(resolved from the study folder: /"
            ),
        ),
    ],
)
def test_bad_config_gives_one_message_naming_key_and_value(paper, mutate, message):
    config = copy.deepcopy(paper)
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_numbers_written_the_yaml_1_2_way_are_numbers(tmp_path):
    """PyYAML (YAML 1.1, which Snakemake uses too) reads 3e-3 as a string; where the schema
    wants a number, or leaves the type open (model_kwargs), it is a number; text stays text."""
    study = tmp_path / "mine.yaml"
    study.write_text(
        "grid: {datasets: [d], archs: [m], seeds: [0]}\n"
        "datasets: {d: {source: digits, heldout_fraction: 2e-1}}\n"
        "archs: {m: {model: test_resnet, lr: 3e-3, head_lr: 1E-2, label: 1e3,"
        " model_kwargs: {drop_rate: 1e-1}}}\n"
        "train: {epochs: 2e1, weight_decay: 5e-2}\n"
        "stats: {sensitivity_q: [5e-2, 1e-1]}\n"
    )
    assert yaml.safe_load(study.read_text())["archs"]["m"]["lr"] == "3e-3"  # what PyYAML makes of it
    config = validate_config(load_config(study), check_models=False)
    arch = config["archs"]["m"]
    assert arch["lr"] == 0.003 and arch["head_lr"] == 0.01 and arch["model_kwargs"] == {"drop_rate": 0.1}
    assert arch["label"] == "1e3"  # a string in the schema stays one
    assert config["train"]["epochs"] == 20 and isinstance(config["train"]["epochs"], int)
    assert config["train"]["weight_decay"] == 0.05 and config["stats"]["sensitivity_q"] == [0.05, 0.1]
    assert config["datasets"]["d"]["heldout_fraction"] == 0.2
    # what Snakemake hands the workflow (its own YAML reading) is converted by the same check
    raw = yaml.safe_load(study.read_text())
    assert validate_config(raw, check_models=False)["archs"]["m"]["lr"] == 0.003


def test_a_config_file_that_is_not_yaml_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {datasets: [d\n")
    with pytest.raises(ConfigError, match="bad.yaml is not readable YAML") as err:
        load_config(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="absent.yaml does not exist"):
        load_config(tmp_path / "absent.yaml")


def test_a_partial_config_takes_every_other_setting_from_the_schema(tmp_path):
    """A study's own config names its data and models; the rest are the schema's defaults,
    which are what the paper config spells out."""
    (tmp_path / "imgs").mkdir()
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "grid: {datasets: [mine], archs: [m], seeds: [0, 1]}\n"
        f"datasets: {{mine: {{source: imagefolder, path: {tmp_path / 'imgs'}}}}}\n"
        "archs: {m: {model: resnet18, lr: 0.001}}\n"
    )
    config = validate_config(load_config(mine), check_models=False)
    paper = load_config(REPO / "config.yaml")
    for section in ("data", "pretrain", "train", "retention", "stats", "sampler", "figures"):
        assert config[section] == paper[section], section
    assert config["datasets"]["mine"]["storage_size"] == paper["datasets"]["octdl"]["storage_size"]
    assert config["datasets"]["mine"]["heldout_fraction"] == paper["datasets"]["octdl"]["heldout_fraction"]
    assert config["archs"]["m"]["weights"] == "pretrained"


def test_the_paper_config_spells_out_the_schema_defaults():
    """What config.yaml writes out for people to read is the schema's default (declared
    once, in the schema; a changed default without config.yaml fails here)."""
    written = yaml.safe_load((REPO / "config.yaml").read_text())
    defaults = fill_defaults(
        {},
        {
            "properties": {
                k: v for k, v in load_schema()["properties"].items() if k not in ("grid", "datasets", "archs")
            }
        },
    )
    for section, values in _flat({k: written[k] for k in defaults}).items():
        assert values == _flat(defaults)[section], section


def test_merge_replaces_lists_and_merges_dicts():
    base = {"grid": {"seeds": [0, 1, 2]}, "archs": {"a": {"lr": 1}}}
    merge(base, {"grid": {"seeds": [7]}, "archs": {"b": {"lr": 2}}})
    assert base == {"grid": {"seeds": [7]}, "archs": {"a": {"lr": 1}, "b": {"lr": 2}}}


# ------------------------------------------------------------------ train settings live once


def _flat(mapping, prefix=""):
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_train_config_reads_every_key_by_name():
    from retention.training.settings import train_config

    train = {
        "epochs": 7,
        "augment": {"scale": [0.5, 1.0], "flip": 0.0},
        "threads": 3,
        "checkpoint_interval_s": 5,
        "seeds_per_job": 4,
        "cache_dir": "/x",
    }
    cfg = train_config(train, {"lr": 0.1, "head_lr": 0.2})
    assert (cfg.lr, cfg.head_lr, cfg.epochs, cfg.threads, cfg.seeds_per_job, cfg.cache_dir) == (
        0.1,
        0.2,
        7,
        3,
        4,
        "/x",
    )
    assert cfg.augment.scale == (0.5, 1.0) and cfg.augment.flip == 0.0
    assert isinstance(cfg.checkpoint_interval_s, float) and isinstance(cfg.augment.scale, tuple)
    # head_lr from the train section unless the arch sets it
    assert train_config({"head_lr": 0.5}, {"lr": 0.1}).head_lr == 0.5
    # numbers written the YAML 1.2 way are numbers
    assert train_config({"head_lr": "3e-3"}, {"lr": 0.1}).head_lr == 0.003


def test_train_config_takes_its_defaults_and_allowed_values_from_the_schema(monkeypatch):
    """TrainConfig states no default and no allowed value: absent keys, nested ones
    included, take the schema's default, and a value the schema does not allow is one
    ConfigError naming the key."""
    from retention import config as config_module
    from retention.training.settings import TrainConfig, train_config

    assert all(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(TrainConfig)
    )
    schema = copy.deepcopy(load_schema())
    schema["properties"]["train"]["properties"]["epochs"]["default"] = 11
    schema["$defs"]["augment"]["properties"]["flip"]["default"] = 0.25
    schema["properties"]["train"]["properties"]["precision"]["enum"].append("fp8")
    monkeypatch.setattr(config_module, "load_schema", lambda path=None: schema)
    cfg = train_config({"augment": {"enabled": False}}, {"lr": 0.1})
    assert (cfg.epochs, cfg.augment.flip, cfg.augment.enabled) == (11, 0.25, False)
    assert train_config({"precision": "fp8"}, {"lr": 0.1}).precision == "fp8"
    with pytest.raises(ConfigError, match="config key 'train.device': 'tpu' is not one of auto, cpu, cuda"):
        train_config({"device": "tpu"}, {"lr": 0.1})
    with pytest.raises(
        ConfigError, match="config key 'train.augment.flip': 2 is greater than the maximum of 1"
    ):
        train_config({"augment": {"flip": 2}}, {"lr": 0.1})


def test_train_config_names_a_key_it_cannot_place(monkeypatch):
    from retention import config as config_module
    from retention.training.settings import train_config

    with pytest.raises(ConfigError, match=r"archs.<arch>.lr is missing"):
        train_config({}, {"model": "resnet18"})
    schema = copy.deepcopy(load_schema())
    schema["properties"]["train"]["properties"]["momentum"] = {"type": "number", "default": 0.9}
    monkeypatch.setattr(config_module, "load_schema", lambda path=None: schema)
    with pytest.raises(TypeError, match="TrainConfig has no field for the schema's train.momentum"):
        train_config({}, {"lr": 0.1})


def test_allowed_values_are_the_schema_enums():
    from retention.config import schema_choices

    assert schema_choices("train", "precision") == tuple(
        load_schema()["properties"]["train"]["properties"]["precision"]["enum"]
    )
    assert "reduce-overhead" in schema_choices("train", "compile_mode")


def test_run_only_keys_come_from_the_schema_and_stay_out_of_rule_params(paper):
    keys = run_only_train_keys()
    assert set(keys) == {
        "threads",
        "checkpoint",
        "checkpoint_interval_s",
        "gpu_slots_per_device",
        "data_on_device",
        "cache_dir",
        "seeds_per_job",
    }
    params = result_train_params(paper)
    assert not set(keys) & set(params) and {"epochs", "augment", "compile"} <= set(params)


def test_absent_train_keys_get_the_schema_default(paper):
    config = copy.deepcopy(paper)
    del config["train"]["epochs"], config["train"]["augment"]["flip"]
    validate_config(config)
    assert config["train"]["epochs"] == 30 and config["train"]["augment"]["flip"] == 0.5


# ------------------------------------------------------------------ timm names without timm


def test_model_names_come_from_a_cache_per_timm_version(tmp_path):
    import timm

    names = model_names.cached_names(tmp_path)
    cache = tmp_path / f"timm_models-{timm.__version__}.json"
    assert cache.exists() and names["timm"] == timm.__version__
    assert set(names["models"]) == set(timm.list_models()) and "resnet18.a1_in1k" in names["pretrained"]
    # a later check reads the file (here: a doctored one, to see that it is what is read)
    cache.write_text(json.dumps({**names, "models": names["models"] + ["my_made_up_net"]}))
    model_names.check_model_name("my_made_up_net", tmp_path)
    # a broken file is rebuilt
    cache.write_text("{not json")
    with pytest.raises(ConfigError, match="'my_made_up_net' is not a timm model name"):
        model_names.check_model_name("my_made_up_net", tmp_path)
    assert json.loads(cache.read_text())["timm"] == timm.__version__


def test_the_config_check_keeps_the_names_in_the_users_cache_not_the_study_folder(tmp_path, monkeypatch):
    """The list depends on the installed timm alone: every study folder shares it."""
    import timm

    monkeypatch.delenv(model_names.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_names.user_cache_dir() == tmp_path / "xdg" / "retention"
    monkeypatch.setenv(model_names.CACHE_ENV, str(tmp_path / "mine"))
    assert model_names.user_cache_dir() == tmp_path / "mine"
    config = load_config(REPO / "config.yaml", REPO / "config" / "demo.yaml")
    config["train"]["cache_dir"] = str(tmp_path / "study" / "resources" / "cache")
    validate_config(config)
    assert (tmp_path / "mine" / f"timm_models-{timm.__version__}.json").is_file()
    assert not (tmp_path / "study").exists()


def test_config_check_imports_neither_torch_nor_timm_nor_pandas(tmp_path):
    """What the workflow does on every parse, in a fresh interpreter, with a warm name cache:
    the config check and every module common.smk imports (read from common.smk itself)."""
    common = (REPO / "workflow/rules/common.smk").read_text()
    modules = sorted(set(re.findall(r"^(?:from|import) (retention[\w.]*)", common, re.M)))
    assert "retention.figures" in modules  # the specs: the figure rules are generated from them
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
        "from retention.config import load_config, validate_config, result_train_params; "
        f"c = load_config({str(REPO / 'config.yaml')!r}, {str(REPO / 'config/demo.yaml')!r}); "
        "validate_config(c); result_train_params(c); "
        "print(sorted(m for m in ('torch', 'timm', 'pandas', 'numpy', 'scipy', 'matplotlib') "
        "if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), RETENTION_CACHE=str(tmp_path))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)  # builds the cache
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout
