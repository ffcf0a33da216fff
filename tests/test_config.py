import copy

import pytest

from retention.config import load_config, merge, validate_config
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
        (lambda c: c["train"].update(epochs="thirty"), "config key 'train.epochs': 'thirty' is not of type 'integer'"),
        (lambda c: c["train"].update(epohcs=3), "unknown config key 'epohcs' under 'train'"),
        (lambda c: c.update(extra=1), "unknown config key 'extra'"),
        (lambda c: c["grid"]["datasets"].append("imagenet"), "'grid.datasets[2]': 'imagenet' is not defined under 'datasets'"),
        (lambda c: c["archs"]["resnet18"].update(model="resnet_nonexistent"), "'archs.resnet18.model': 'resnet_nonexistent' is not a timm model"),
        (lambda c: c["archs"]["resnet18"].update(model="resnet18.no_such_tag"), "no pretrained tag 'no_such_tag'"),
        (lambda c: c["retention"].update(trace="since_lunch"), "'retention.trace': 'since_lunch' is not one of"),
        (lambda c: c["datasets"]["cub200"].update(source="cub"), "'datasets.cub200.source': 'cub' is not one of"),
        (lambda c: c["sampler"].update(scout_seed=2), "'sampler.scout_seed': 2 is one of the compared seeds"),
        (lambda c: c.pop("train"), "config key 'train' is missing"),
        (lambda c: c["sampler"].update(kinds=["spaced"]), "'sampler.kinds': ['spaced'] - F6 compares the two kinds"),
        (lambda c: c["train"].update(compile_mode="fastest"), "'train.compile_mode': 'fastest' is not one of"),
        (lambda c: (c["datasets"]["octdl"].update(source="digits_lt", imbalance_ratio=100.0)),
         "'datasets.octdl.imbalance_ratio': 100 is more than digits_lt can give (58"),
    ],
)
def test_bad_config_gives_one_message_naming_key_and_value(paper, mutate, message):
    config = copy.deepcopy(paper)
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_merge_replaces_lists_and_merges_dicts():
    base = {"grid": {"seeds": [0, 1, 2]}, "archs": {"a": {"lr": 1}}}
    merge(base, {"grid": {"seeds": [7]}, "archs": {"b": {"lr": 2}}})
    assert base == {"grid": {"seeds": [7]}, "archs": {"a": {"lr": 1}, "b": {"lr": 2}}}
