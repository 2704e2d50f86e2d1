"""Strict values: every numeric key is range-checked where the config is built, with one line
naming key, value and allowed range; YAML errors give file and line; file-system errors are one
line and exit 2 in the CLI."""

from __future__ import annotations

import pytest

from cityseg_lib.cli import main
from cityseg_lib.config import load_config
from cityseg_lib.errors import CitysegError

BAD_TRAIN_VALUES = [
    ("batch_size=0", "batch_size=0 is out of range (allowed: >= 1)"),
    ("lr=-1", "lr=-1.0 is out of range (allowed: > 0.0)"),
    ("lr=0", "lr=0.0 is out of range (allowed: > 0.0)"),
    ("lr=.nan", "lr=nan is out of range (allowed: > 0.0)"),
    ("step_size=0", "step_size=0 is out of range (allowed: >= 1)"),
    ("image_size=[0, 0]", "image_size=(0, 0) is out of range (allowed: >= 1)"),
    ("hflip_p=2", "hflip_p=2.0 is out of range (allowed: in [0.0, 1.0])"),
    ("epochs=0", "epochs=0 is out of range (allowed: >= 1)"),
    ("gamma=-1", "gamma=-1.0 is out of range (allowed: in [0.0, 1.0])"),
    ("gamma=1.5", "gamma=1.5 is out of range (allowed: in [0.0, 1.0])"),
    ("weight_decay=-0.1", "weight_decay=-0.1 is out of range (allowed: >= 0.0)"),
    ("patience=-1", "patience=-1 is out of range (allowed: >= 0)"),
    ("max_batches=-2", "max_batches=-2 is out of range (allowed: >= 0)"),
    ("num_workers=-5", "num_workers=-5 is out of range (allowed: in [-1, 256])"),
    ("seed=-1", "seed=-1 is out of range (allowed: in [0, 4294967295])"),
    ("crop_scale=[0.9, 0.5]", "crop_scale=[0.9, 0.5] must be [low, high] with 0 < low <= high <= 1"),
    ("train_subset=0", "train_subset=0 is out of range"),
    ("train_subset=1.5", "train_subset=1.5 is out of range"),
    ("optimizer=sgd", "optimizer='sgd' is out of range (allowed: one of adamw, adam, adamax)"),
    ("loss=focal", "loss='focal' is out of range (allowed: one of cross_entropy, iou, dice)"),
    ("augment=heavy", "augment='heavy' is out of range"),
    ("cpu_bf16=maybe", "cpu_bf16='maybe' is out of range (allowed: one of off, on, auto)"),
    ("name=../x", "name='../x' must be a relative folder name"),
    # np.random.seed takes 0 .. 2**32 - 1: a larger seed failed with a traceback after the run folder was made
    ("seed=4294967296", "seed=4294967296 is out of range (allowed: in [0, 4294967295])"),
    ("seed=1180591620717411303424", "seed=1180591620717411303424 is out of range"),
    # a huge worker count forked processes until the machine gave out (a hang, orphan workers, a run folder)
    ("num_workers=1180591620717411303424", "num_workers=1180591620717411303424 is out of range (allowed: in [-1, 256])"),
    # the runs of a profile live in RUNS_DIR/PROFILE: a path or '..' put them outside runs_dir, '' beside the profiles
    ("profile=../../escape", "profile='../../escape' must be one plain folder name"),
    ("profile=/tmp/elsewhere", "profile='/tmp/elsewhere' must be one plain folder name"),
    ("profile=a/b", "profile='a/b' must be one plain folder name"),
    ("profile=''", "profile='' must be one plain folder name"),
    ("profile=..", "profile='..' must be one plain folder name"),
    ("profile=' smoke'", "profile=' smoke' must be one plain folder name"),
]


@pytest.mark.parametrize("override, message", BAD_TRAIN_VALUES)
def test_bad_training_values_name_key_value_and_range(override, message):
    with pytest.raises(CitysegError) as err:
        load_config(None, [override])
    assert str(err.value) == f"override: {message}" or message in str(err.value)
    assert "\n" not in str(err.value)


def test_good_values_at_the_edges_are_accepted():
    cfg = load_config(None, ["gamma=1", "hflip_p=0", "weight_decay=0", "patience=0", "train_subset=1",
                             "num_workers=-1", "optimizer=adamax", "crop_scale=[1, 1]"])
    assert cfg.gamma == 1.0 and cfg.optimizer == "adamax" and cfg.train_subset == 1
    cfg = load_config(None, ["seed=4294967295", "num_workers=256", "profile=my-study_2"])
    assert (cfg.seed, cfg.num_workers, cfg.profile) == (2**32 - 1, 256, "my-study_2")


@pytest.mark.parametrize("args, fragment", [
    (["train", "batch_size=0"], "batch_size=0 is out of range (allowed: >= 1)"),
    (["train", "--params", "{tmp}"], "is a folder, not a params file"),
    (["train", "--params", "{tmp}/bad.yaml"], "bad.yaml:3: invalid YAML"),
    (["train", "--params", "{tmp}/missing.yaml"], "missing.yaml: params file not found"),
    (["sweep", "--params", "{tmp}/bad.yaml", "--dry-run"], "bad.yaml:3: invalid YAML"),
    (["sweep", "--params", "params/smoke/sweep.yaml", "base.lr=-1", "--dry-run"], "lr=-1.0 is out of range"),
    (["sweep", "--params", "params/smoke/sweep.yaml", "grid.weight_decay=[0, -1]", "--dry-run"],
     "weight_decay=-1.0 is out of range"),
    (["sweep", "--params", "params/smoke/sweep.yaml", "profile=../x", "--dry-run"],
     "override: profile='../x' must be one plain folder name"),
    (["evaluate", "--run", "no/such/run"], "no/such/run: not a run folder (no config.yaml in"),
    (["predict", "--run", "no/such/run", "--input", "{tmp}/empty", "--out", "{tmp}/o"], "no .png/.jpg images found"),
    (["predict", "--run", "no/such/run", "--input", "{tmp}/x.png", "--out", "{tmp}/bad.yaml"],
     "exists and is not a folder"),
    (["check-data", "--root", "{tmp}/nothing"], "nothing"),
])
def test_cli_input_errors_are_one_line_and_exit_2(args, fragment, tmp_path, capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    (tmp_path / "bad.yaml").write_text("epochs: 2\nlr: 0.1\n  batch_size: [\n")
    (tmp_path / "x.png").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err
    assert "Traceback" not in err and "weights_only" not in err


def test_an_unreadable_checkpoint_is_one_line_without_torch_advice(tmp_path, capsys):
    from cityseg_lib.train.checkpoint import load_checkpoint

    bad = tmp_path / "best.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CitysegError) as err:
        load_checkpoint(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value) and "weights_only" not in str(err.value)
