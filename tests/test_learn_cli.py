"""`adcforge train` on the command line: --set for any key, the method list from the one list,
whole output paths."""

import pytest
from click.testing import CliRunner

from adcforge.cli import main_group
from adcforge.errors import ConfigError
from learn.cli import with_sets
from learn.config import load_config
from learn.methods import METHODS


def test_help_lists_every_method_from_the_one_list():
    text = " ".join(CliRunner().invoke(main_group, ["train", "--help"]).output.split())
    assert ", ".join(METHODS) in text and "--set KEY=VALUE" in text


@pytest.mark.parametrize("item, value", [
    ("train.lr_thresholds=1e-3", ("train", "lr_thresholds", 1e-3)),
    ("quantizer.thresholds=[380, 450, 530]", ("quantizer", "thresholds", [380, 450, 530])),
    ("network.kind=cnn", ("network", "kind", "cnn")),
])
def test_set_parses_yaml_values(item, value):
    cfg = with_sets(load_config(None), [item])
    assert cfg[value[0]][value[1]] == value[2]


@pytest.mark.parametrize("item, text", [
    ("epochs", "expected KEY=VALUE"),
    ("=3", "expected KEY=VALUE"),
    ("nope.x=1", "unknown key 'nope.x'"),
    ("train.lr=[1", "not valid YAML"),
])
def test_set_refuses_malformed_items(item, text):
    with pytest.raises(ConfigError, match=text):
        with_sets(load_config(None), [item])


def test_fixed_ladder_from_the_command_line_and_whole_paths(tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(main_group, ["train", "-o", f"{out}/", "--method", "fixed",
                                        "--bits", "2", "--set", "quantizer.thresholds=[258,262,270]",
                                        "--set", "train.epochs=1", "--set", "train.freeze_epochs=1",
                                        "--quiet"])
    assert r.exit_code == 0, r.output
    assert f"{out}/design.yaml" in r.output and "//" not in r.output
    assert "thresholds: [258, 262, 270]" in (out / "design.yaml").read_text()


def _folder(root, sizes):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_data_size_key_and_flag(tmp_path):
    from learn.config import validate

    assert validate({"data": {"size": "12x16"}})["data"]["size"] == [12, 16]
    assert validate({"data": {"size": [12, 16]}})["data"]["size"] == [12, 16]
    for bad in ("12", [0, 4], [4, 4, 4], "axb"):
        with pytest.raises(ConfigError, match="key 'data.size'"):
            validate({"data": {"size": bad}})
    _folder(tmp_path / "imgs", [(8, 8)] * 6 + [(10, 6)])
    r = CliRunner().invoke(main_group, ["train", "-o", str(tmp_path / "run"), "--data",
                                        str(tmp_path / "imgs"), "--size", "6x6", "--set",
                                        "train.epochs=1", "--set", "train.freeze_epochs=1",
                                        "--quiet"])
    assert r.exit_code == 0, r.output
    import yaml
    design = yaml.safe_load((tmp_path / "run" / "design.yaml").read_text())
    assert design["provenance"]["data_size"] == [6, 6]
    assert design["mac"]["inputs"] == 36
