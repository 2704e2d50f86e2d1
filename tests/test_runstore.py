"""The run store: a run is identified by what it computes; nothing is deleted; extension; locks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cityseg_lib import runstore
from cityseg_lib.config import load_config
from cityseg_lib.errors import CitysegError
from cityseg_lib.lock import folder_lock, lock_holder
from cityseg_lib.train import engine


def _cfg(root, runs, name="r", **extra):
    values = {"name": name, "profile": "test", "runs_dir": str(runs), "data_root": str(root), "image_size": [32, 64],
              "model": "simple_fcn", "model_options": {"base_width": 4}, "epochs": 2, "batch_size": 2, "lr": 0.01,
              "step_size": 1, "gamma": 0.5, "progress": False, **extra}
    return load_config(None, values)


def _snapshot(run: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in run.iterdir() if p.is_file() and p.name != ".lock"}


def _no_training(monkeypatch):
    monkeypatch.setattr(engine, "fit", lambda *a, **k: pytest.fail("trained again"))


def test_a_changed_computed_key_is_a_new_folder_beside_the_old(demo_root, tmp_path):
    a = runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1), verbose=False)
    before = _snapshot(a)
    b = runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1, lr=0.02), verbose=False)
    assert a != b and a.parent == b.parent and a.name.startswith("r-") and b.name.startswith("r-")
    assert _snapshot(a) == before  # the finished run is untouched
    assert runstore.find_runs(_cfg(demo_root, tmp_path)) == [b, a]
    # execution keys do not change the identity
    assert runstore.run_dir(_cfg(demo_root, tmp_path, epochs=9, num_workers=0, device="cpu", progress=True)) == a


def test_a_moved_dataset_reuses_the_finished_run(demo_root, tmp_path, monkeypatch):
    run = runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1), verbose=False)
    moved = tmp_path / "elsewhere" / "cityscapes"
    shutil.copytree(demo_root, moved)
    _no_training(monkeypatch)
    again = runstore.train_or_load(_cfg(moved, tmp_path, epochs=1), verbose=False)
    assert again == run
    assert runstore.load_config(run).data_root == str(moved.resolve())  # points at the dataset's new place
    # a dataset with other content is another computation
    victim = sorted((moved / "gtFine/val").rglob("*_labelIds.png"))[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    from cityseg_lib.data.fingerprint import clear_cache

    clear_cache()
    assert runstore.run_dir(_cfg(moved, tmp_path, epochs=1)) != run


def test_data_regenerated_in_this_process_is_fingerprinted_afresh(tmp_path):
    """The fingerprint is cached per process: a dataset regenerated (or grown) while it runs must
    not keep the old data's run identity nor its image counts (the subset checks read them)."""
    from cityseg_lib.data.demo import make_demo_dataset

    root = tmp_path / "data"
    make_demo_dataset(root, train=4, val=2, test=0, size=(64, 32), coarse=False, seed=0, workers=1, progress=False)
    first = runstore.run_dir(_cfg(root, tmp_path))
    shutil.rmtree(root)
    make_demo_dataset(root, train=6, val=2, test=0, size=(64, 32), coarse=False, seed=7, workers=1, progress=False)
    assert runstore.run_dir(_cfg(root, tmp_path)) != first
    assert runstore.dataset_fingerprint(_cfg(root, tmp_path))["images"]["train/fine"] == 6
    with pytest.raises(CitysegError, match="holds only 6 images"):
        runstore.run_dir(_cfg(root, tmp_path, train_subset=7))


def test_a_larger_epochs_extends_the_run_exactly(demo_root, tmp_path, capsys):
    straight = runstore.train_or_load(_cfg(demo_root, tmp_path / "s", epochs=3), verbose=False)
    run = runstore.train_or_load(_cfg(demo_root, tmp_path / "e", epochs=2), verbose=False)
    assert runstore.load_summary(run)["epochs_run"] == 2
    capsys.readouterr()
    extended = runstore.train_or_load(_cfg(demo_root, tmp_path / "e", epochs=3))
    assert extended == run and runstore.load_summary(run)["epochs_run"] == 3
    said = capsys.readouterr().out.splitlines()  # what a notebook cell shows: it went on, not from the start
    assert said[0] == f"r: resuming {runstore.files.relative(run)} after epoch 2 of 3", said
    assert said[-1].startswith("r: trained 1 epoch (epochs 3-3) in "), said
    skip = ["epoch_time_s", "train_images_per_s"]
    a, b = runstore.load_metrics(straight).drop(columns=skip), runstore.load_metrics(run).drop(columns=skip)
    assert a.equals(b)  # StepLR continued: the same as training 3 epochs from the start
    sa, sb = runstore.load_summary(straight), runstore.load_summary(run)
    assert sa["val"] == sb["val"] and sa["best_epoch"] == sb["best_epoch"]
    with pytest.raises(CitysegError, match="trained for 3 epochs, 2 were asked"):
        runstore.train_or_load(_cfg(demo_root, tmp_path / "e", epochs=2), verbose=False)


def test_resume_refuses_a_changed_computed_key_and_retrain_replaces(demo_root, tmp_path, capsys):
    run = runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1), verbose=False)
    with pytest.raises(CitysegError, match=r"cannot resume: lr was 0.01 in that run, now 0.1"):
        runstore.prepare(_cfg(demo_root, tmp_path, epochs=1, lr=0.1), resume=True)
    assert runstore.prepare(_cfg(demo_root, tmp_path, epochs=1), resume=False) == (run, "finished")
    first = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1), retrain=True, verbose=False) == run
    # the earlier run is kept, whole and unchanged, under .replaced/ beside the runs; no lookup finds it
    (kept,) = (run.parent / ".replaced").iterdir()
    assert kept.name.startswith(run.name + ".") and f"moved to {runstore.relative(kept)}" in capsys.readouterr().out
    assert {p.relative_to(kept): p.read_bytes() for p in kept.rglob("*") if p.is_file() and p.name != ".lock"} == first
    assert (run / "summary.json").is_file() and (run / "summary.json").read_bytes() != first[Path("summary.json")]
    assert runstore.find_runs(_cfg(demo_root, tmp_path, epochs=1)) == [run]
    # a second retrain keeps the second run too, under its own name
    runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1), retrain=True, verbose=False)
    assert len(list((run.parent / ".replaced").iterdir())) == 2


def test_under_torchrun_rank_0_alone_moves_the_run_aside_for_a_retrain(demo_root, tmp_path, monkeypatch):
    """Every rank prepares at once. A second rank that also moved the run aside met rank 0's lock
    (and stopped the run), or set aside the empty folder that lock had just re-created."""
    run = runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1), verbose=False)
    before = _snapshot(run)
    monkeypatch.setenv("RANK", "1")
    assert runstore.prepare(_cfg(demo_root, tmp_path, epochs=1), resume=False, retrain=True) == (run, "new")
    assert _snapshot(run) == before and not (run.parent / ".replaced").exists()
    monkeypatch.setenv("RANK", "0")
    assert runstore.prepare(_cfg(demo_root, tmp_path, epochs=1), resume=False, retrain=True) == (run, "new")
    (kept,) = (run.parent / ".replaced").iterdir()
    assert _snapshot(kept) == before and not run.exists()


def test_per_image_matrices_sum_to_the_split_matrix(demo_root, tmp_path):
    run = runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1), verbose=False)
    ids, mats = runstore.load_per_image(run)
    assert len(ids) == mats.shape[0] == 3 and mats.shape[1:] == (19, 20)
    assert mats.sum(0).tolist() == runstore.load_summary(run)["confusion_matrix_full_res"]
    # the same frames at the training size (per_image.npz), which the report pairs with the full-resolution ones
    ids_t, mats_t = runstore.load_per_image(run, full_res=False)
    assert ids_t == ids and mats_t.shape == mats.shape
    assert mats_t.sum(0).tolist() == runstore.load_summary(run)["confusion_matrix"]
    per_frame = mats_t.sum((1, 2))  # each frame's own labelled pixels at 32x64, not its batch-mates'
    assert ((per_frame > 0) & (per_frame <= 32 * 64)).all()


_HOLD = textwrap.dedent("""
    import sys, time
    from cityseg_lib.lock import folder_lock
    with folder_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_a_second_process_on_a_run_is_refused_and_a_dead_holders_lock_is_taken_over(demo_root, tmp_path):
    cfg = _cfg(demo_root, tmp_path, epochs=1)
    run = runstore.run_dir(cfg)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CitysegError, match=rf"another run is using this folder: pid {holder.pid} on "):
            engine.fit(cfg, resume=True)
        assert lock_holder(run)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # the holder died by SIGKILL: its lock went with it and the next process takes the folder
    with folder_lock(run):
        assert lock_holder(run)["pid"] == os.getpid()
    assert engine.fit(cfg, resume=True) == run and (run / "summary.json").is_file()


def test_a_run_being_trained_is_named_busy_not_advised_resume(demo_root, tmp_path, capsys):
    """While another process trains a run, a second start is told so (pid), not "pass --resume"
    (which the lock then refuses too) nor "resuming ..." before the refusal."""
    from cityseg_lib.cli import main

    args = ["name=r", "profile=test", f"runs_dir={tmp_path}", f"data_root={demo_root}", "image_size=[32, 64]",
            "model=simple_fcn", "model_options={base_width: 4}", "batch_size=2", "lr=0.01", "step_size=1",
            "gamma=0.5", "progress=false"]
    assert main(["train", *args, "epochs=1"]) == 0
    run, longer = runstore.run_dir(_cfg(demo_root, tmp_path, epochs=1)), _cfg(demo_root, tmp_path, epochs=2)
    assert runstore.prepare(longer, resume=True) == (run, "resume")
    capsys.readouterr()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = rf"another run is using this folder: pid {holder.pid} on "
        for resume in (False, True):
            with pytest.raises(CitysegError, match=busy):
                runstore.prepare(longer, resume=resume)
        assert main(["train", *args, "epochs=2", "--resume"]) == 2
        out, err = capsys.readouterr()
        assert "resuming" not in out and re.search(busy, err)
        assert runstore.prepare(_cfg(demo_root, tmp_path, epochs=1), resume=False) == (run, "finished")  # reuse: no lock
        new = runstore.run_dir(_cfg(demo_root, tmp_path, name="new"))
        new.mkdir()  # a run that another process has just begun (its folder only)
        blocker = subprocess.Popen([sys.executable, "-c", _HOLD, str(new)], stdout=subprocess.PIPE, text=True)
        try:
            assert blocker.stdout.readline().strip() == "held"
            with pytest.raises(CitysegError, match=rf"another run is using this folder: pid {blocker.pid} on "):
                runstore.prepare(_cfg(demo_root, tmp_path, name="new"), resume=False)
        finally:
            blocker.kill()
            blocker.wait()
    finally:
        holder.kill()
        holder.wait()
    assert runstore.prepare(longer, resume=True) == (run, "resume")  # the holder is gone


def test_two_cli_trainings_with_the_same_name_keep_both_runs(demo_root, tmp_path, capsys):
    from cityseg_lib.cli import main

    args = ["name=same", "profile=test", f"runs_dir={tmp_path}", f"data_root={demo_root}", "image_size=[32, 64]",
            "model=simple_fcn", "model_options={base_width: 4}", "epochs=1", "batch_size=2"]
    assert main(["train", *args, "lr=0.003"]) == 0
    assert main(["train", *args, "lr=0.01"]) == 0
    runs = sorted((tmp_path / "test").glob("same-*"))
    assert len(runs) == 2 and all((r / "summary.json").is_file() for r in runs)
    assert {runstore.load_config(r).lr for r in runs} == {0.003, 0.01}
    out = capsys.readouterr().out
    assert "epoch 1/1: train loss" in out and "run finished:" in out
    # --resume with a larger epochs extends; with a changed computed key it is refused (exit 2)
    assert main(["train", *args, "lr=0.01", "epochs=2", "--resume"]) == 0
    run = runstore.run_dir(load_config(None, [*args, "lr=0.01"]))
    assert runstore.load_summary(run)["epochs_run"] == 2
    assert f"extending {run} from 1 to 2 epochs\nepoch 2/2: " in capsys.readouterr().out
    capsys.readouterr()
    assert main(["train", *args[:-1], "batch_size=3", "lr=0.01", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume: batch_size was 2 in that run, now 3" in err and err.count("\n") == 1


def test_the_report_pairs_training_size_and_full_resolution_matrices_by_frame(tmp_path):
    """A run's two per-image files are paired frame by frame, whatever order each was written in;
    a run without the training-size file (trained before it was kept) has no pair."""
    from cityseg_lib.report.context import StoredRuns

    def mats(*values):
        return np.stack([np.full((19, 20), v, dtype=np.int64) for v in values])

    runstore.write_per_image(tmp_path, ["b", "a", "c"], mats(2, 1, 3), full_res=False)
    runstore.write_per_image(tmp_path, ["a", "c", "b"], mats(10, 30, 20), full_res=True)
    train, full = StoredRuns().scoring_pair(str(tmp_path))
    assert train[:, 0, 0].tolist() == [1, 3, 2] and full[:, 0, 0].tolist() == [10, 30, 20]
    old = tmp_path / "old"
    old.mkdir()
    runstore.write_per_image(old, ["a"], mats(1), full_res=True)
    assert StoredRuns().scoring_pair(str(old)) is None


def _swin_weights(path: Path, seed: int) -> dict:
    """A tiny Swin V2 classification checkpoint at ``path`` (as the hub's) and the model options
    whose encoder it fits."""
    import timm
    import torch

    kwargs = {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 2, 2, 4], "window_size": 4}
    torch.manual_seed(seed)
    torch.save(timm.create_model("swinv2_tiny_window8_256", pretrained=False, img_size=(48, 96), **kwargs).state_dict(),
               path)
    return {"encoder": "swinv2_tiny_window8_256", "pretrained": True, "weights": str(path), "encoder_kwargs": kwargs}


def test_a_weights_file_enters_the_identity_by_its_content_not_its_path(demo_root, tmp_path, monkeypatch):
    """The same checkpoint moved, copied or named relatively is the same run (reused, resumed);
    another checkpoint saved over the same path is another run, not the old one reused."""
    (tmp_path / "w").mkdir()
    options = _swin_weights(tmp_path / "w" / "model.pth", seed=1)
    swin = dict(model="swin2_jnet", image_size=[48, 96], num_workers=0, full_res_eval=False)
    run = runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1, model_options=options, **swin), verbose=False)
    import hashlib
    import json

    digest = "sha256:" + hashlib.sha256((tmp_path / "w" / "model.pth").read_bytes()).hexdigest()
    assert json.loads((run / "identity.json").read_text())["computed"]["model_options"]["weights"] == digest
    assert runstore.load_config(run).model_options["weights"] == options["weights"]  # the path, for people
    shutil.copy(tmp_path / "w" / "model.pth", tmp_path / "copy.pth")
    monkeypatch.chdir(tmp_path)
    _no_training(monkeypatch)
    for path in ("copy.pth", "w/../w/model.pth", str(tmp_path / "copy.pth")):
        cfg = _cfg(demo_root, tmp_path, epochs=1, model_options={**options, "weights": path}, **swin)
        assert runstore.run_dir(cfg) == run and runstore.train_or_load(cfg, verbose=False) == run
    monkeypatch.undo()
    # resumed (extended) through another path to the same content: the saved path is not compared
    longer = _cfg(demo_root, tmp_path, epochs=2, model_options={**options, "weights": str(tmp_path / "copy.pth")},
                  **swin)
    assert engine.fit(longer, resume=True) == run and runstore.load_summary(run)["epochs_run"] == 2
    # other weights saved over the same path: another computation
    _swin_weights(tmp_path / "w" / "model.pth", seed=2)
    assert runstore.run_dir(_cfg(demo_root, tmp_path, epochs=1, model_options=options, **swin)) != run
    with pytest.raises(CitysegError, match=f"weights file {tmp_path / 'gone.pth'} does not exist"):
        runstore.run_dir(_cfg(demo_root, tmp_path, model_options={**options, "weights": str(tmp_path / "gone.pth")},
                              **swin))
