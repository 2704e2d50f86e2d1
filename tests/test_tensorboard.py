"""TensorBoard: every run writes event files whose scalars equal metrics.csv; resume (after an
interruption, or to extend a run) never logs a step twice; `cityseg tensorboard` serves them."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cityseg_lib import runstore
from cityseg_lib.cli import main
from cityseg_lib.config import load_config
from cityseg_lib.train import engine, tblog

BIN = Path(sys.executable).parent


def _cfg(demo_root, runs, name, **extra):
    values = {"name": name, "profile": "test", "runs_dir": str(runs), "data_root": str(demo_root),
              "image_size": [32, 64], "model": "simple_fcn", "model_options": {"base_width": 4}, "epochs": 3,
              "batch_size": 2, "lr": 0.01, "step_size": 1, "gamma": 0.5, "progress": False, **extra}
    return load_config(None, values)


def _events(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(runstore.tensorboard_dir(run)), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _assert_scalars_equal_metrics(run: Path) -> None:
    """Same epochs, same values (to float32 precision), each step once."""
    acc, rows = _events(run), _metrics(run)
    epochs = [int(r["epoch"]) for r in rows]
    for field, tag in tblog.SCALAR_TAGS.items():
        events = acc.Scalars(tag)
        assert [e.step for e in events] == epochs, (tag, [e.step for e in events])
        assert [e.value for e in events] == [np.float32(r[field]) for r in rows], tag


def _no_step_twice(run: Path) -> None:
    acc = _events(run)
    tags = acc.Tags()
    for tag in tags["scalars"]:
        twice = [s for s, n in Counter(e.step for e in acc.Scalars(tag)).items() if n > 1]
        assert not twice, f"{tag}: steps {twice} logged twice"
    for tag in tags["images"]:
        steps = [e.step for e in acc.Images(tag)]
        assert len(steps) == len(set(steps)), (tag, steps)
    for tag in tags["tensors"]:
        steps = [e.step for e in acc.Tensors(tag)]
        assert len(steps) == len(set(steps)), (tag, steps)


def test_a_run_writes_event_files_equal_to_metrics_csv(demo_root, tmp_path):
    run = engine.fit(_cfg(demo_root, tmp_path, "a"))
    assert runstore.tensorboard_dir(run) == run / "tb"
    assert list((run / "tb").glob("events.out.tfevents.*"))
    _assert_scalars_equal_metrics(run)
    acc, summary = _events(run), json.loads((run / "summary.json").read_text())
    # the kept checkpoint, logged once at the last step: scores and per-class IoU (full resolution)
    assert [(e.step, e.value) for e in acc.Scalars("best/epoch")] == [(3, summary["best_epoch"])]
    assert acc.Scalars("best/val_mIoU")[0].value == np.float32(summary["val"]["miou"])
    class_iou = summary["val_full_res"]["class_iou"]
    for name, iou in class_iou.items():
        value = acc.Scalars(f"class_IoU/{name.replace(' ', '_')}")[0].value
        assert value == np.float32(iou) or (np.isnan(iou) and np.isnan(value)), name
    text = acc.Tensors("best/class_IoU/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| road |" in text and "full resolution" in text
    # prediction grids: the first and the last epoch; 3 validation images, image | truth | prediction
    grids = acc.Images("val/predictions")
    assert [g.step for g in grids] == [1, 3]
    assert (grids[0].height, grids[0].width) == (3 * 32, 3 * 64)
    assert [g.step for g in acc.Images("best/predictions")] == [3]


def test_prediction_grid_colours_truth_and_prediction(demo_root, tmp_path):
    import torch

    from cityseg_lib.data.labels import train_ids_to_color

    cfg = _cfg(demo_root, tmp_path, "grid")
    _, val = engine.build_datasets(cfg)

    class Constant(torch.nn.Module):  # predicts class 10 (sky) everywhere
        def forward(self, x):
            out = torch.zeros(x.shape[0], 19, *x.shape[2:])
            out[:, 10] = 1
            return out

    grid = tblog.prediction_grid(Constant(), val, torch.device("cpu"), n=2)
    image, mask, _ = val[0]
    assert grid.shape == (2 * 32, 3 * 64, 3) and grid.dtype == np.uint8
    assert np.array_equal(grid[:32, :64], image.permute(1, 2, 0).numpy())
    assert np.array_equal(grid[:32, 64:128], train_ids_to_color(mask.numpy()))
    assert (grid[:, 128:] == train_ids_to_color(np.array([10]))[0]).all()


def _kill_at_epoch(monkeypatch, epoch: int):
    """``RunLog.epoch`` raises KeyboardInterrupt at ``epoch`` (a kill after that epoch's ``last.pt``,
    before its events); returns the function that puts the real one back."""
    real = tblog.RunLog.epoch

    def killed(self, row, *args, **kwargs):
        if row["epoch"] == epoch:
            raise KeyboardInterrupt
        return real(self, row, *args, **kwargs)

    monkeypatch.setattr(tblog.RunLog, "epoch", killed)
    return lambda: monkeypatch.setattr(tblog.RunLog, "epoch", real)


def test_interrupted_and_extended_runs_log_each_step_once(demo_root, tmp_path, monkeypatch):
    cfg = _cfg(demo_root, tmp_path, "resume", epochs=4)
    undo = _kill_at_epoch(monkeypatch, 3)  # after last.pt of epoch 3, before its events
    with pytest.raises(KeyboardInterrupt):
        engine.fit(cfg, resume=True)
    undo()
    run = runstore.run_dir(cfg)
    assert [e.step for e in _events(run).Scalars("loss/train")] == [1, 2]

    # killed after the kept checkpoint's events, before summary.json: the final block is redone
    real_summary = runstore.write_summary
    monkeypatch.setattr(runstore, "write_summary", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        engine.fit(cfg, resume=True)  # epoch 3 back-filled from last.pt, epoch 4 trained
    monkeypatch.setattr(runstore, "write_summary", real_summary)
    engine.fit(cfg, resume=True)
    _assert_scalars_equal_metrics(run)
    _no_step_twice(run)
    assert [e.step for e in _events(run).Scalars("best/val_mIoU")] == [4]

    # extending the finished run: new epochs and a second kept-checkpoint block, nothing twice
    engine.fit(_cfg(demo_root, tmp_path, "resume", epochs=6), resume=True)
    _assert_scalars_equal_metrics(run)
    _no_step_twice(run)
    assert [e.step for e in _events(run).Scalars("best/val_mIoU")] == [4, 6]
    files = sorted(p.name for p in (run / "tb").glob("events.out.tfevents.*"))
    assert len(files) == 4  # one per (re)start, in the order they were written
    assert [int(f.split(".")[3]) for f in files] == sorted(int(f.split(".")[3]) for f in files)


def test_a_grid_epoch_killed_before_its_events_gets_its_grid_on_resume(demo_root, tmp_path, monkeypatch):
    cfg = _cfg(demo_root, tmp_path, "grid", epochs=2, full_res_eval=False)
    undo = _kill_at_epoch(monkeypatch, 1)  # after last.pt and metrics.csv of epoch 1
    with pytest.raises(KeyboardInterrupt):
        engine.fit(cfg, resume=True)
    undo()
    run = runstore.run_dir(cfg)
    assert ("val/predictions", 1) not in tblog.logged_steps(run / "tb")
    engine.fit(cfg, resume=True)
    steps = sorted(s for t, s in tblog.logged_steps(run / "tb") if t == "val/predictions")
    assert steps == [1, 2]  # epoch 1's grid drawn on resume, from last.pt's weights (epoch 1's)
    _no_step_twice(run)


@pytest.mark.slow
def test_sigkill_then_resume_logs_each_step_once(demo_root, tmp_path):
    overrides = [f"{k}={v}" for k, v in {
        "name": "k", "profile": "test", "runs_dir": tmp_path, "data_root": demo_root, "image_size": "[32, 64]",
        "model": "simple_fcn", "model_options": "{base_width: 4}", "epochs": 6, "batch_size": 1, "lr": 0.01,
        "step_size": 1, "gamma": 0.5}.items()]
    cmd = [str(BIN / "cityseg"), "train", *overrides, "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = runstore.run_dir(load_config(None, overrides))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (
            (run / "metrics.csv").is_file() and len(_metrics(run)) >= 2):
        time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run finished before it could be killed"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(_metrics(run)) == 6
    _assert_scalars_equal_metrics(run)
    _no_step_twice(run)


def test_ranks_that_never_start_write_nothing(tmp_path):
    with tblog.RunLog(tmp_path / "run") as log:
        log.epoch({"epoch": 1, **{f: 0.0 for f in tblog.SCALAR_TAGS}}, None, None, None, 1)
    assert not (tmp_path / "run").exists()


def test_cli_tensorboard_serves_the_runs(demo_root, tmp_path):
    engine.fit(_cfg(demo_root, tmp_path, "served", epochs=1))
    proc = subprocess.Popen([str(BIN / "cityseg"), "tensorboard", "--logdir", str(tmp_path / "test"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, deadline = None, time.time() + 60
        while url is None and time.time() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            m = re.search(r"(http://localhost:\d+/)", line)
            url = m.group(1) if m else None
        assert url, "TensorBoard printed no URL"
        for _ in range(100):
            runs = json.loads(urllib.request.urlopen(url + "data/runs", timeout=10).read())
            if runs:
                break
            time.sleep(0.1)
        assert any(r.startswith("served-") and r.endswith("/tb") for r in runs), runs
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_cli_tensorboard_without_runs_is_one_line(tmp_path, capsys):
    assert main(["tensorboard", "--logdir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):  # --profile and --logdir exclude each other
        main(["tensorboard", "--profile", "demo", "--logdir", "x"])


@pytest.mark.parametrize("profile", ["../..", "/", "", "a/b"])
def test_cli_tensorboard_profile_is_one_folder_name(tmp_path, capsys, monkeypatch, profile):
    """--profile serves runs/PROFILE: '../..' served (and TensorBoard crawled) the folders above runs/."""
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path))
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    monkeypatch.setattr("cityseg_lib.train.tblog.check_address", lambda *a: pytest.fail("serving started"))
    with pytest.raises(SystemExit) as stop:
        main(["tensorboard", "--profile", profile])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert f"argument --profile: profile={profile!r} must be one plain folder name" in err, err


@pytest.mark.parametrize("args, named", [(["--port", "-1"], "--port -1"), (["--port", "99999"], "--port 99999"),
                                         (["--host", "not a host!!"], "'not a host!!'")])
def test_cli_tensorboard_bad_port_or_host_is_one_line(tmp_path, capsys, monkeypatch, args, named):
    from tensorboard import program

    monkeypatch.setattr(program.TensorBoard, "main", lambda self: pytest.fail("TensorBoard started"))
    assert main(["tensorboard", "--logdir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1, err
