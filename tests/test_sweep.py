"""Halving sweep: rung plans, halving decisions, dry run, resume after a kill, the Ray executor."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cityseg_lib import sweep as S
from cityseg_lib.sweep.trials import failed_result


def _no_dataset(monkeypatch):
    """Sweeps with fake trials have no dataset: give them a fixed content fingerprint."""
    monkeypatch.setattr("cityseg_lib.runstore.identity.dataset_fingerprint", lambda cfg: {"digest": "test", "images": {}})
from cityseg_lib.errors import CitysegError

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "params" / "smoke" / "sweep.yaml"
PARAMS = [SMOKE, *sorted((ROOT / "params").glob("*/sweep_*.yaml"))]
TIME_COLUMNS = ("train_time_s", "wall_time_s")


# ----------------------------------------------------------------------------- helpers


def _smoke_overrides(demo_root: Path, runs: Path, cache: Path, devices: str = "[cpu]") -> list[str]:
    # one torch thread per trial: two CPU workers then share the 2 cores instead of oversubscribing them
    return [f"base.data_root={demo_root}", f"base.cache_dir={cache}", f"runs_dir={runs}", f"devices={devices}",
            "cpu_threads=1"]


def _rows(folder: Path) -> list[dict]:
    with open(folder / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def _without_times(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in rows]


def _assert_same_sweep(a: Path, b: Path) -> None:
    """Same trials, losses, decisions and winner (times aside): the sweep is deterministic on CPU."""
    assert _without_times(_rows(a)) == _without_times(_rows(b))
    assert (a / "table2.csv").read_text() == (b / "table2.csv").read_text()
    wa, wb = json.loads((a / "winner.json").read_text()), json.loads((b / "winner.json").read_text())
    assert wa["winner"] == wb["winner"] and wa["runner_up"] == wb["runner_up"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    # module fixtures run before the autouse CITYSEG_CACHE one: name the cache explicitly
    return tmp_path_factory.getbasetemp() / "cache"


@pytest.fixture(scope="module")
def reference(demo_root, cache_dir, tmp_path_factory) -> Path:
    """The smoke sweep run once, uninterrupted, on one CPU worker."""
    runs = tmp_path_factory.mktemp("sweep_reference")
    cfg = S.load_sweep_config(SMOKE, _smoke_overrides(demo_root, runs, cache_dir))
    return S.run_sweep(cfg, log=lambda _: None)


# ----------------------------------------------------------------------------- planning


def test_plan_for_the_36_configurations_of_table_1():
    plan = S.plan_rungs(36, 3200, rung_epochs=20, final_epochs=30)
    assert [r.candidates for r in plan] == [36, 18, 9, 5, 3, 2]
    assert [r.keep for r in plan] == [18, 9, 5, 3, 2, 1]
    assert [r.subset for r in plan] == [100, 200, 400, 800, 1600, 3200]
    assert [r.fraction for r in plan] == [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]
    assert [r.epochs for r in plan] == [20] * 5 + [30] and [r.final for r in plan] == [False] * 5 + [True]
    # a split that does not divide evenly rounds up: 2975 / 32 -> 93
    assert S.plan_rungs(36, 2975)[0].subset == 93


@pytest.mark.parametrize("n, sizes, subsets", [
    (1, [1], [64]),
    (2, [2], [64]),
    (3, [3, 2], [32, 64]),
    (5, [5, 3, 2], [16, 32, 64]),
    (7, [7, 4, 2], [16, 32, 64]),
    (9, [9, 5, 3, 2], [8, 16, 32, 64]),
])
def test_plan_for_other_counts(n, sizes, subsets):
    plan = S.plan_rungs(n, 64, rung_epochs=3)
    assert [r.candidates for r in plan] == sizes and [r.subset for r in plan] == subsets
    assert [r.keep for r in plan] == sizes[1:] + [1]
    assert plan[-1].final and plan[-1].subset == 64 and all(not r.final for r in plan[:-1])


def test_min_subset_raises_the_small_rungs_but_never_past_the_training_set():
    assert [r.subset for r in S.plan_rungs(36, 3200, min_subset=500)] == [500, 500, 500, 800, 1600, 3200]
    assert [r.subset for r in S.plan_rungs(5, 6, min_subset=100)] == [6, 6, 6]
    assert [r.subset for r in S.plan_rungs(36, 10)] == [1, 1, 2, 3, 5, 10]  # never fewer than 1 image
    with pytest.raises(CitysegError, match="no candidates"):
        S.plan_rungs(0, 10)


def test_format_plan_counts_image_epochs_against_the_full_grid():
    text = S.format_plan(S.plan_rungs(36, 3200), 3200, title="unet")
    assert text.startswith("unet\n36 candidates, 3200 training images, 6 rungs")
    # 36*100*20 + 18*200*20 + 9*400*20 + 5*800*20 + 3*1600*20 + 2*3200*20 = 520,000 of 36*3200*20
    assert "total 520,000 image-epochs = 22.6% of the full grid" in text and "2,304,000" in text
    assert len(text.splitlines()) == 2 + 1 + 6 + 1


def test_default_grid_is_table_1():
    cands = S.grid_candidates(S.SweepConfig().grid)
    assert len(cands) == 36 and [c.id for c in cands[:2]] == ["c00", "c01"] and cands[-1].id == "c35"
    assert cands[0].params == {"lr": 1e-3, "gamma": 1.0, "weight_decay": 0.0, "model_options.dropout": 0.0}
    assert cands[35].params == {"lr": 1e-4, "gamma": 0.1, "weight_decay": 1e-4, "model_options.dropout": 0.1}
    assert {c.params["gamma"] for c in cands} == {1.0, math.sqrt(0.1), 0.1}
    assert len({tuple(c.params.values()) for c in cands}) == 36


def test_select_survivors_ranks_by_loss_then_index_and_never_keeps_a_failure():
    losses = {0: 0.5, 1: 0.3, 2: 0.3, 3: math.inf, 4: math.nan, 5: 0.1}
    assert S.select_survivors(losses, 3) == [5, 1, 2]
    assert S.select_survivors(losses, 6) == [5, 1, 2, 0]  # failed trials (inf, NaN) do not go on
    assert S.select_survivors({7: 1.0, 2: 1.0}, 1) == [2]


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("text, fragment", [
    ("base: {epochs: 3}", "base.epochs is set by the sweep"),
    ("base: {lrr: 1}", "base: unknown key 'lrr'"),
    ("grid: {lrr: [1]}", "grid.lrr: not a training key"),
    ("grid: {lr: []}", "grid.lr: expected a non-empty list"),
    ("grid: {train_split: [nosuch, train]}", "grid.train_split: train_split chooses the data"),
    ("grid: {lr: [fast]}", "grid.lr"),
    ("grid: {train_subset: [1, 2]}", "grid.train_subset: train_subset is set by the sweep"),
    ("base: {lr: 0.1}\ngrid: {lr: [1.0e-3]}", "grid.lr: also fixed in base"),
    ("base: {model_options: {dropout: 0.1}}", "grid.model_options.dropout: also fixed in base"),
    ("rung_epochs: 0", "rung_epochs=0 is out of range (allowed: >= 1)"),
        ("base: {batch_size: 0}", "base: batch_size=0 is out of range (allowed: >= 1)"),
        ("grid: {lr: [1.0e-3, -1]}", "lr=-1.0 is out of range (allowed: > 0.0)"),
    ("devices: [cpu, cpu]", "devices=['cpu', 'cpu'] must name one device"),
    ("devices: [gpu]", "devices='gpu' must be auto, cpu, cuda or cuda:N"),
    ("grid: {lr: [0.1, 1.0e-2, 0.1]}", "grid.lr: 0.1 is listed twice"),
    ("grid: {lr: [1, 1.0]}", "grid.lr: 1.0 is listed twice"),
    ("grid: {model_options.dropout: [0.1, 0.1]}", "grid.model_options.dropout: 0.1 is listed twice"),
    ("executor: spark", "executor=spark: unknown executor (valid: local, ray)"),
    ("cpus_per_run: -1", "cpus_per_run=-1 is out of range (allowed: >= 0)"),
    ("rungs: 3", "unknown key 'rungs'"),
])
def test_bad_sweep_params_name_the_key_and_file(tmp_path, text, fragment):
    p = tmp_path / "sweep.yaml"
    p.write_text(text + "\n")
    with pytest.raises(CitysegError, match=str(p)) as err:
        S.load_sweep_config(p)
    assert fragment in str(err.value)


def test_overrides_set_one_entry_of_base_or_grid(tmp_path):
    cfg = S.load_sweep_config(SMOKE, ["base.batch_size=4", "grid.weight_decay=[0, 1.0e-4]", "name=x"])
    assert cfg.base["batch_size"] == 4 and cfg.base["model"] == "unet" and cfg.name == "x"
    assert cfg.grid["weight_decay"] == [0.0, 1e-4] and len(cfg.grid["lr"]) == 5
    with pytest.raises(CitysegError, match="override: base: unknown key 'bogus'"):
        S.load_sweep_config(SMOKE, ["base.bogus=1"])


@pytest.mark.parametrize("path", PARAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_sweep_params_load(path):
    cfg = S.load_sweep_config(path)
    n = len(S.grid_candidates(cfg.grid))
    assert cfg.base.get("data_root", "") == "" and cfg.profile == path.parent.name
    assert n == {"smoke": 5, "demo": 8, "full": 36}[cfg.profile]
    if cfg.profile == "full":
        assert cfg.grid == S.TABLE1_GRID and cfg.rung_epochs == 20 and cfg.base.get("image_size", [768, 768]) == [768, 768]


def test_trial_config_merges_base_candidate_and_rung(tmp_path, monkeypatch):
    _no_dataset(monkeypatch)
    cfg = S.SweepConfig(name="sw", profile="smoke", runs_dir=str(tmp_path),
                        base={"model": "unet", "model_options": {"base_width": 4}})
    cands = S.grid_candidates(cfg.grid)
    plan = S.plan_rungs(len(cands), 64)
    tc = S.trial_config(cfg, cands[35], plan[0], 64)
    assert tc.name == f"{S.sweep_dir_for(cfg).name}/trials/r0_c35" and tc.name.startswith("sw-") and tc.profile == "smoke" and tc.epochs == 20 and tc.train_subset == 2
    assert tc.model_options == {"base_width": 4, "dropout": 0.1} and tc.lr == 1e-4 and tc.gamma == 0.1
    assert tc.full_res_eval is False  # trials rank by val loss; the full-resolution pass is skipped
    assert S.trial_config(cfg, cands[0], plan[-1], 64).train_subset is None  # the final rung: all images


# ----------------------------------------------------------------------------- halving decisions (no training)

# canned best-val-losses of 7 candidates: rung -> candidate index -> loss (None = the trial fails)
CANNED = {
    0: {0: 0.5, 1: 0.3, 2: 0.3, 3: 0.9, 4: None, 5: 0.2, 6: 0.7},  # keep 4: c05, c01, c02 (tie: lower index), c00
    1: {0: 0.1, 1: 0.4, 2: 0.2, 5: 0.3},  # keep 2: c00, c02
    2: {0: 0.3, 2: 0.2},  # final: c02 wins
}


def test_halving_decisions_on_known_losses(tmp_path, monkeypatch):
    calls = []

    def fake_trial(tc):
        rung, cid = tc.name.rsplit("/", 1)[1].split("_")
        rung, idx = int(rung[1:]), int(cid[1:])
        calls.append((rung, idx, tc.train_subset, tc.epochs, tc.device))
        loss = CANNED[rung][idx]
        if loss is None:
            return {"subset": 0, "epochs": 0, "status": "failed", "best_val_loss": math.inf, "best_epoch": 0,
                    "val_miou": math.nan, "train_time_s": 0.0, "wall_time_s": 0.0, "error": "non-finite loss"}
        return {"subset": tc.train_subset or 64, "epochs": tc.epochs, "status": "ok", "best_val_loss": loss,
                "best_epoch": 1, "val_miou": 1 - loss, "train_time_s": 0.1, "wall_time_s": 0.2, "error": ""}

    monkeypatch.setattr("cityseg_lib.sweep.run.run_trial", fake_trial)
    _no_dataset(monkeypatch)
    monkeypatch.setattr("cityseg_lib.sweep.run.count_train_images", lambda cfg: 64)
    cfg = S.SweepConfig(name="known", profile="smoke", runs_dir=str(tmp_path), devices=["cpu"], rung_epochs=3,
                        final_epochs=5, base={"model": "unet", "gamma": 0.5, "model_options": {"dropout": 0.05}},
                        grid={"lr": [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]})
    log = []
    out = S.run_sweep(cfg, log=log.append)

    assert calls == ([(0, i, 16, 3, "cpu") for i in range(7)] + [(1, i, 32, 3, "cpu") for i in (0, 1, 2, 5)]
                     + [(2, i, None, 5, "cpu") for i in (0, 2)])
    rows = _rows(out)
    decisions = {(int(r["rung"]), r["candidate"]): r["decision"] for r in rows}
    assert decisions == {
        (0, "c00"): "kept", (0, "c01"): "kept", (0, "c02"): "kept", (0, "c03"): "dropped",
        (0, "c04"): "dropped", (0, "c05"): "kept", (0, "c06"): "dropped",
        (1, "c00"): "kept", (1, "c01"): "dropped", (1, "c02"): "kept", (1, "c05"): "dropped",
        (2, "c00"): "runner-up", (2, "c02"): "winner",
    }
    failed = next(r for r in rows if r["candidate"] == "c04")
    assert failed["status"] == "failed" and float(failed["best_val_loss"]) == math.inf
    assert failed["subset"] == "16" and failed["error"] == "non-finite loss"
    assert list(rows[0])[:4] == ["rung", "candidate", "lr", "subset"]

    with open(out / "table2.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row == {"model": "U-Net", "lr": "0.001", "gamma": "0.5", "weight_decay": "0.0001", "dropout": "0.05",
                   "val_loss": "0.2"}
    winner = json.loads((out / "winner.json").read_text())
    assert winner["winner"]["candidate"] == "c02" and winner["runner_up"]["candidate"] == "c00"
    assert (out / "brackets.png").stat().st_size > 0 and (out / "plan.txt").is_file()
    assert any("FAILED (non-finite loss)" in line for line in log)


def test_a_failed_trial_never_goes_on_nor_becomes_runner_up(tmp_path, monkeypatch):
    """3 candidates, 2 to keep, 2 fail: the one that succeeded alone goes on (a failure used to be kept,
    trained again on more data, and named runner-up with an Infinity loss in winner.json)."""
    trained = []

    def fake_trial(tc):
        idx = int(tc.name.rsplit("_c", 1)[1])
        trained.append((tc.name.rsplit("/", 1)[1], idx))
        if idx != 1:
            return failed_result(tc.train_subset or 8, "non-finite loss")
        return {"subset": tc.train_subset or 8, "epochs": tc.epochs, "status": "ok", "best_val_loss": 0.4,
                "best_epoch": 1, "val_miou": 0.6, "train_time_s": 0.1, "wall_time_s": 0.2, "error": ""}

    monkeypatch.setattr("cityseg_lib.sweep.run.run_trial", fake_trial)
    _no_dataset(monkeypatch)
    monkeypatch.setattr("cityseg_lib.sweep.run.count_train_images", lambda cfg: 8)
    cfg = S.SweepConfig(name="fails", runs_dir=str(tmp_path), devices=["cpu"], grid={"lr": [1e30, 1e-3, 1e20]})
    out = S.run_sweep(cfg, log=lambda _: None)
    assert [name for name, _ in trained] == ["r0_c00", "r0_c01", "r0_c02", "r1_c01"]
    decisions = {(int(r["rung"]), r["candidate"]): r["decision"] for r in _rows(out)}
    assert decisions == {(0, "c00"): "dropped", (0, "c01"): "kept", (0, "c02"): "dropped", (1, "c01"): "winner"}
    text = (out / "winner.json").read_text()
    winner = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in winner.json"))
    assert winner["winner"]["candidate"] == "c01" and winner["runner_up"] is None


def test_a_rung_where_every_trial_fails_stops_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr("cityseg_lib.sweep.run.run_trial", lambda tc: failed_result(0, "boom"))
    _no_dataset(monkeypatch)
    monkeypatch.setattr("cityseg_lib.sweep.run.count_train_images", lambda cfg: 8)
    cfg = S.SweepConfig(name="bad", runs_dir=str(tmp_path), devices=["cpu"], grid={"lr": [1e-3, 1e-4, 1e-5]})
    with pytest.raises(CitysegError, match="every trial of rung 0 failed .*c00: boom"):
        S.run_sweep(cfg, log=lambda _: None)


def test_a_trial_that_cannot_resume_with_these_settings_stops_the_sweep(monkeypatch):
    """Another cpu_threads than the trial began with is the settings' fault, not the trial's: raised
    (one line), not recorded as a failed trial that a later resume with the right settings would skip."""
    from cityseg_lib.config import TrainConfig
    from cityseg_lib.runstore import ResumeRefused

    def refused(cfg, resume=False, log=None):
        raise ResumeRefused("RUN/last.pt: cannot resume with 2 torch threads: this run trained with 1")

    monkeypatch.setattr("cityseg_lib.train.engine.fit", refused)
    with pytest.raises(CitysegError, match="cannot resume with 2 torch threads"):
        S.run_trial(TrainConfig())


def test_a_trial_without_its_pretrained_weights_stops_the_sweep(monkeypatch):
    """No download, no such file, a file of another model: the settings' or the place's fault, the
    same for every trial; raised (one line), not recorded as failed trials the halving would drop."""
    from cityseg_lib.config import TrainConfig
    from cityseg_lib.models.timm_weights import WeightsUnavailable

    def unavailable(cfg, resume=False, log=None):
        raise WeightsUnavailable("swin2_jnet: cannot get pretrained weights for encoder 'swinv2_tiny_window8_256'")

    monkeypatch.setattr("cityseg_lib.train.engine.fit", unavailable)
    with pytest.raises(WeightsUnavailable, match="cannot get pretrained weights"):
        S.run_trial(TrainConfig())


def test_a_trial_on_a_device_the_worker_lacks_stops_the_sweep_and_old_such_failures_run_again(monkeypatch, tmp_path):
    """A device the machine lacks is the settings' fault (devices is volatile: the same sweep folder):
    raised, not recorded; such failures recorded by an older version are not kept on resume."""
    from cityseg_lib.config import TrainConfig
    from cityseg_lib.sweep.records import failed_rows
    from cityseg_lib.train.setup import DeviceUnavailable

    def lacks(cfg, resume=False, log=None):
        raise DeviceUnavailable("device 'cuda' requested but CUDA is not available on this machine")

    monkeypatch.setattr("cityseg_lib.train.engine.fit", lacks)
    with pytest.raises(DeviceUnavailable, match="CUDA is not available"):
        S.run_trial(TrainConfig())
    trials = tmp_path / "trials.csv"
    trials.write_text("rung,candidate,lr,subset,status,error\n"
                      "0,c00,0.1,2,failed,device 'cuda' requested but CUDA is not available on this machine\n"
                      "0,c01,0.01,2,failed,RUN/last.pt: cannot resume with 2 torch threads: this run trained with 1\n"
                      "0,c02,0.001,2,failed,non-finite training loss at epoch 1\n")
    assert list(failed_rows(trials)) == [(0, "c02")]  # a genuine failure of the trial is kept


def test_a_trial_whose_worker_does_not_find_the_data_stops_the_sweep_and_old_such_failures_run_again(tmp_path):
    """A Ray worker that does not find the dataset (a relative root resolved in its own directory,
    a node without the shared file system) is the place's fault: raised, not recorded for good."""
    from cityseg_lib.config import TrainConfig
    from cityseg_lib.data.layout import DataUnavailable
    from cityseg_lib.sweep.records import failed_rows

    with pytest.raises(DataUnavailable, match=f"dataset root {tmp_path / 'nowhere'} does not exist"):
        S.run_trial(TrainConfig(data_root=str(tmp_path / "nowhere"), device="cpu"))
    trials = tmp_path / "trials.csv"
    trials.write_text("rung,candidate,lr,subset,status,error\n"
                      "0,c00,0.1,2,failed,dataset root /data/demo does not exist; expected leftImg8bit/ ...\n"
                      "0,c01,0.01,2,failed,missing split folder /d/leftImg8bit/train; expected ...\n"
                      "0,c02,0.001,2,failed,non-finite training loss at epoch 1\n")
    assert list(failed_rows(trials)) == [(0, "c02")]


@pytest.mark.parametrize("override, fragment", [
    ("grid.model_options.dropout=[0.1, -0.5]", "option dropout=-0.5 must be a number in [0, 1) (trial c01"),
    ("base.model_options={base_width: 4, depth: 7}", "the training input [32, 64] is smaller than 2**depth"),
    ("min_subset=7", "min_subset=7 is more than the 6 images of the training split"),
    ("devices=[cuda:0]", "devices=['cuda:0']: device 'cuda:0' requested but"),
    ("devices=[gpu]", "devices='gpu' must be auto, cpu, cuda or cuda:N"),
    ("grid.lr=[0.1, 0.1]", "grid.lr: 0.1 is listed twice"),
])
def test_a_sweep_that_would_fail_every_trial_exits_2_before_any_folder(demo_root, tmp_path, capsys, monkeypatch,
                                                                       override, fragment):
    import torch

    from cityseg_lib.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    monkeypatch.setattr("cityseg_lib.sweep.run.run_trial", lambda tc: pytest.fail("a trial ran"))
    runs = tmp_path / "runs"
    for dry in ([], ["--dry-run"]):
        argv = ["sweep", "--params", str(SMOKE), f"base.data_root={demo_root}", f"runs_dir={runs}", override, *dry]
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and fragment in err and err.count("\n") == 1, err
    assert not runs.exists()


def test_brackets_panel_of_a_finished_sweep(reference):
    from matplotlib.figure import Figure

    from cityseg_lib.plots import brackets_panel

    ax = Figure().subplots()
    brackets_panel(ax, S.read_trials(reference))  # the one brackets figure (sweep folder and report)
    assert ax.get_ylabel() == "best validation loss" and len(ax.get_xticks()) == 3
    assert [line.get_label() for line in ax.get_lines() if line.get_label().startswith("winner")]


# ----------------------------------------------------------------------------- real (tiny) sweeps


def test_dry_run_prints_the_plan_and_trains_nothing(demo_root, cache_dir, tmp_path):
    cfg = S.load_sweep_config(SMOKE, _smoke_overrides(demo_root, tmp_path, cache_dir))
    log = []
    out = S.run_sweep(cfg, dry_run=True, log=log.append)
    (text,) = log
    assert "5 candidates, 6 training images, 3 rungs" in text
    assert [line.split()[:4] for line in text.splitlines()[3:6]] == [
        ["0", "5", "3", "2"], ["1", "3", "2", "3"], ["2", "2", "1", "6"]]
    assert not out.exists() and not any(tmp_path.iterdir())


def test_end_to_end_smoke_sweep(reference):
    rows = _rows(reference)
    assert [(r["rung"], r["candidate"]) for r in rows][:5] == [("0", f"c0{i}") for i in range(5)]
    assert [r["subset"] for r in rows] == ["2"] * 5 + ["3"] * 3 + ["6"] * 2
    assert all(r["status"] == "ok" and r["epochs"] == "2" and math.isfinite(float(r["best_val_loss"])) for r in rows)
    assert sorted(r["decision"] for r in rows[-2:]) == ["runner-up", "winner"]
    for r in rows:
        summary = json.loads((reference / r["run_dir"] / "summary.json").read_text())
        assert summary["best_val_loss"] == float(r["best_val_loss"]) and summary["val_full_res"] is None
    with open(reference / "table2.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["model"] == "U-Net" and row["gamma"] == "0.5" and row["dropout"] == ""
    assert (reference / "brackets.png").is_file() and (reference / "sweep.yaml").is_file()


def test_rerunning_a_finished_sweep_trains_nothing_and_a_changed_one_is_a_new_folder(reference, demo_root, cache_dir,
                                                                                monkeypatch):
    before = (reference / "trials.csv").read_text()
    runs = reference.parent.parent
    monkeypatch.setattr("cityseg_lib.sweep.run.run_trial", lambda tc: pytest.fail(f"{tc.name} trained again"))
    cfg = S.load_sweep_config(SMOKE, _smoke_overrides(demo_root, runs, cache_dir))
    log = []
    S.run_sweep(cfg, log=log.append)
    assert (reference / "trials.csv").read_text() == before  # results come from the runs' summary.json
    assert "rung 0: 5 of 5 trials already finished" in log
    # a changed sweep is a new folder beside the finished one, which stays as it was
    changed = S.sweep_dir_for(S.load_sweep_config(SMOKE, [*_smoke_overrides(demo_root, runs, cache_dir), "rung_epochs=3"]))
    assert changed != reference and changed.parent == reference.parent and changed.name.startswith("sw")
    assert (reference / "trials.csv").read_text() == before


def test_retraining_a_sweep_moves_the_finished_one_aside_whole(reference, demo_root, cache_dir, tmp_path, monkeypatch,
                                                               capsys):
    import shutil

    from cityseg_lib.sweep import results

    runs = tmp_path / "runs"
    shutil.copytree(reference.parent.parent, runs)
    overrides = _smoke_overrides(demo_root, runs, cache_dir)
    folder = S.sweep_dir_for(S.load_sweep_config(SMOKE, overrides))
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}
    assert (folder / "winner.json").is_file() and before
    # what the new sweep would compute is another test's business: here only what happens to the old one
    monkeypatch.setattr(S, "run_sweep", lambda cfg, log: S.sweep_dir_for(cfg))
    assert results.run_sweep_or_load(SMOKE, overrides, retrain=True) == folder
    (kept,) = (folder.parent / ".replaced").iterdir()
    assert kept.name.startswith(folder.name + ".") and f"moved to {kept}" in capsys.readouterr().out
    assert {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file() and p.name != ".lock"} == before
    assert not folder.exists()


def _one_done_one_in_progress(folder: Path) -> bool:
    """Some trial is recorded in trials.csv and another has a checkpoint but no summary yet."""
    try:
        done = (folder / "trials.csv").read_text().count("\n") >= 2  # header + one trial
    except FileNotFoundError:
        return False
    return done and any(not (p.parent / "summary.json").exists() for p in folder.glob("trials/*/last.pt"))


def _kill_mid_trial(cmd: list[str], folder: Path, timeout: float, env: dict | None = None,
                    watch=lambda proc: None) -> subprocess.Popen:
    """Start the sweep ``cmd`` and SIGKILL it once a trial is done and another in progress
    (``watch(proc)`` on every poll); fails the test if the sweep ends first."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        watch(proc)
        if _one_done_one_in_progress(folder):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail(f"the sweep ended before it could be killed mid-trial: {proc.stderr.read().decode()[-2000:]}")
    proc.wait()
    return proc


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_tables(reference, demo_root, cache_dir, tmp_path):
    overrides = _smoke_overrides(demo_root, tmp_path, cache_dir)
    code = ("import sys; from cityseg_lib.sweep import load_sweep_config, run_sweep; "
            "run_sweep(load_sweep_config(sys.argv[1], sys.argv[2:]))")
    cmd = [sys.executable, "-c", code, str(SMOKE), *overrides]
    folder = S.sweep_dir_for(S.load_sweep_config(SMOKE, overrides))

    proc = _kill_mid_trial(cmd, folder, timeout=180)
    assert proc.returncode == -signal.SIGKILL and not (folder / "table2.csv").exists()
    interrupted = [d for d in (folder / "trials").iterdir() if (d / "last.pt").exists()
                   and not (d / "summary.json").exists()]
    assert interrupted, "killed between trials, not during one"

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already finished" in again.stdout
    _assert_same_sweep(folder, reference)
    for d in interrupted:  # resumed from last.pt: every epoch once
        with open(d / "metrics.csv", newline="") as f:
            assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


# ----------------------------------------------------------------------------- the Ray executor


@pytest.fixture(scope="module")
def ray_local():
    """One embedded Ray cluster of 2 CPUs for this module's Ray sweeps (its environment restored after)."""
    saved = dict(os.environ)
    from cityseg_lib.execute import ray_executor

    yield ray_executor.connect(num_cpus=2)
    import ray

    ray.shutdown()
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.slow
@pytest.mark.parametrize("cpus_per_run, workers", [(2, 1), (1, 2)], ids=["ray-1-worker", "ray-2-workers"])
def test_ray_gives_the_tables_of_local(ray_local, reference, demo_root, cache_dir, tmp_path, cpus_per_run, workers):
    """trials.csv, winner.json and table2.csv as with the local executor, with 1 or 2 trials at a time
    (cpu_threads=1 everywhere: the results must not depend on how many run at once)."""
    from cityseg_lib.execute import get_executor
    from cityseg_lib.lock import lock_holder

    executor = get_executor("ray", cpus_per_run=cpus_per_run)
    assert executor.capacity(threads=1) == workers
    cfg = S.load_sweep_config(SMOKE, _smoke_overrides(demo_root, tmp_path, cache_dir))
    out = S.run_sweep(cfg, log=lambda _: None, executor=executor)
    _assert_same_sweep(out, reference)
    pids = {lock_holder(d)["pid"] for d in (out / "trials").iterdir()}
    assert os.getpid() not in pids  # every trial ran in a Ray worker


def test_params_select_ray_and_a_failed_trial_is_recorded_not_retried(ray_local, demo_root, cache_dir, tmp_path):
    """``executor: ray`` in the params; a trial whose training raises CitysegError (lr 1e30: a
    non-finite loss) is recorded ``failed`` as with the local executor, and the sweep goes on."""
    overrides = [*_smoke_overrides(demo_root, tmp_path, cache_dir), "executor=ray", "cpus_per_run=1",
                 "grid.lr=[1.0e+30, 1.0e-2]"]
    log = []
    out = S.run_sweep(S.load_sweep_config(SMOKE, overrides), log=log.append)
    rows = {r["candidate"]: r for r in _rows(out)}
    assert rows["c00"]["status"] == "failed" and rows["c00"]["error"].startswith("non-finite training loss")
    assert rows["c01"]["decision"] == "winner" and "executor ray: trials ran on 1 node(s)" in log


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        out.add(p)
        todo += children.get(p, [])
    return out - {pid}


def _cmdline(pid: int) -> str:
    """The program a process runs (its first argument), or "" once it has gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for p in pids:
        try:
            if Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(p)
        except OSError:
            pass
    return alive


@pytest.mark.slow
def test_a_ray_sweep_killed_takes_its_workers_along_and_resumes_to_the_same_tables(reference, demo_root, cache_dir,
                                                                                   tmp_path):
    """What the removed parent-death watcher did: the sweep process killed (SIGKILL) mid-trial, its
    embedded cluster and workers end too (none keeps training into a trial folder, whose lock a
    restarted sweep needs), and a new start resumes to the tables of an uninterrupted sweep."""
    overrides = [*_smoke_overrides(demo_root, tmp_path, cache_dir), "executor=ray", "cpus_per_run=1"]
    code = ("import sys; from cityseg_lib.sweep import load_sweep_config, run_sweep; "
            "run_sweep(load_sweep_config(sys.argv[1], sys.argv[2:]))")
    cmd = [sys.executable, "-c", code, str(SMOKE), *overrides]
    folder = S.sweep_dir_for(S.load_sweep_config(SMOKE, overrides))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}

    names: dict[int, str] = {}

    def watch(proc):
        for p in _descendants(proc.pid) | names.keys():  # read while they live (the raylet may go first),
            name = _cmdline(p)                             # again later: a worker renames itself "ray::..."
            if name:
                names[p] = name

    _kill_mid_trial(cmd, folder, timeout=300, env=env, watch=watch)
    assert any(n.startswith("ray::") for n in names.values()) and any(n.endswith("raylet") for n in names.values()), \
        f"no Ray workers and raylet seen under the sweep: {sorted(set(names.values()))}"
    # the trainers -- workers, raylet, GCS -- end within a minute; Ray's two agent processes notice
    # the raylet's death later (up to two minutes here) and train nothing
    trainers = {p for p, name in names.items() if "Agent" not in name}
    deadline = time.monotonic() + 60
    while _alive(trainers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(trainers), f"processes of the killed sweep live on: {[names[p] for p in _alive(trainers)]}"

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_same_sweep(folder, reference)
