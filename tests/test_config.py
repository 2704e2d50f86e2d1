"""Strict, typed config: params YAML and key=value overrides."""

from pathlib import Path

import pytest

from cityseg_lib.config import TrainConfig, load_config
from cityseg_lib.strict import config_to_dict, from_dict, parse_overrides
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
