"""Strict, typed config: params YAML and key=value overrides."""

from pathlib import Path

import pytest

from cityseg_lib.config import TrainConfig, load_config
from cityseg_lib.strict import config_to_dict, from_dict, load_yaml, parse_overrides
from cityseg_lib.errors import CitysegError


def test_defaults_follow_the_reference_report():
    cfg = TrainConfig()
    assert cfg.image_size == (768, 768) and cfg.step_size == 10 and cfg.epochs == 20


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("lr: 1.0e-3\nimage_size: [64, 96]\nmodel_options: {base_width: 8}\n")
    cfg = load_config(p, ["lr=1e-4", "train_subset=0.25", "name=x"])
    assert cfg.lr == 1e-4 and cfg.image_size == (64, 96) and cfg.train_subset == 0.25 and cfg.name == "x"
    assert cfg.model_options == {"base_width": 8}
    assert load_config(None, ["train_subset=3"]).train_subset == 3  # a count stays an int
    assert from_dict(TrainConfig, config_to_dict(cfg)) == cfg  # round trip through plain dicts


@pytest.mark.parametrize(
    "override, fragment",
    [
        (["lrr=1"], "unknown key 'lrr'"),
        (["epochs=1.5"], "epochs: 1.5 is not an int"),
        (["image_size=[1, 2, 3]"], "image_size"),
        (["amp=maybe"], "amp: 'maybe' is not a bool"),
        (["lr=fast"], "lr"),
        (["novalue"], "is not key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, fragment):
    with pytest.raises(CitysegError, match=fragment.replace("[", r"\[")):
        load_config(None, override)


def test_bad_yaml_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("epochs: [1\n")
    with pytest.raises(CitysegError, match="bad.yaml"):
        load_config(p)
    p.write_text("batch: 3\n")
    with pytest.raises(CitysegError, match=r"bad.yaml: unknown key 'batch'"):
        load_config(p)
    with pytest.raises(CitysegError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_a_key_given_twice_in_a_params_file_names_the_file_key_and_line(tmp_path, capsys):
    from cityseg_lib.cli import main

    p = tmp_path / "dup.yaml"
    p.write_text("epochs: 1\nlr: 1.0e-3\nepochs: 2\n")
    with pytest.raises(CitysegError, match=r"dup.yaml:3: invalid YAML \(key 'epochs' given twice, first on line 1\)"):
        load_config(p)
    p.write_text("model_options:\n  base_width: 8\n  depth: 2\n  base_width: 4\n")  # nested mappings too
    with pytest.raises(CitysegError, match=r"dup.yaml:4: .*key 'base_width' given twice, first on line 2"):
        load_config(p)
    with pytest.raises(CitysegError, match=r"model_options=\{a: 1, a: 2\}.*key 'a' given twice"):
        parse_overrides(["model_options={a: 1, a: 2}"])
    p.write_text("base: &b {lr: 1.0e-3, epochs: 3}\nrun:\n  <<: *b\n  lr: 1.0e-4\n")  # a merge key may be overridden
    assert load_yaml(p)["run"] == {"lr": 1e-4, "epochs": 3}
    p.write_text("epochs: 1\nepochs: 2\n")
    assert main(["train", "--params", str(p)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "dup.yaml:2" in err and "'epochs' given twice" in err


def test_parse_overrides_yaml_values():
    assert parse_overrides(["a=1", "b=[1, 2]", "c=hello", "d="]) == {"a": 1, "b": [1, 2], "c": "hello", "d": ""}


@pytest.mark.parametrize("profile", ["demo", "full", "smoke"])
def test_the_profiles_training_block_is_a_command_line_params_file(profile):
    """params/PROFILE/train.yaml (the README's `cityseg train --params` example) is a valid config."""
    path = Path(__file__).parents[1] / "params" / profile / "train.yaml"
    cfg = load_config(path, ["model=unet"])
    assert cfg.model == "unet" and cfg.epochs >= 1


def test_git_commit_is_that_of_the_code_not_of_cityseg_home(tmp_path, monkeypatch):
    import subprocess

    from cityseg_lib.provenance import git_commit

    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path))  # outputs elsewhere, outside any git checkout
    src = Path(__file__).parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the tests do not run from a git checkout")
    assert git_commit().split("+")[0] == head.stdout.strip()
