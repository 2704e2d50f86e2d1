"""Resume under faults: a process killed between any two writes, a resume asked with other settings,
a hand-edited file. A run is only ever finished with consistent files, never overwritten, and a
resumed run ends as the uninterrupted one does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cityseg_lib import runstore
from cityseg_lib.cli import main
from cityseg_lib.config import load_config
from cityseg_lib.errors import CitysegError
from cityseg_lib.train import engine
from cityseg_lib.train.checkpoint import load_checkpoint

TIME_COLUMNS = ["epoch_time_s", "train_images_per_s"]


def _values(root, runs, **extra) -> dict:
    return {"name": "r", "profile": "test", "runs_dir": str(runs), "data_root": str(root), "image_size": [32, 64],
            "model": "simple_fcn", "model_options": {"base_width": 4}, "epochs": 2, "batch_size": 2, "lr": 0.01,
            "step_size": 1, "gamma": 0.5, "progress": False, "full_res_eval": False, "num_workers": 0, **extra}


def _cfg(root, runs, **extra):
    return load_config(None, _values(root, runs, **extra))


def _cli_args(root, runs, **extra) -> list[str]:
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in _values(root, runs, **extra).items()]


class _Killed(BaseException):
    """The process dies here: like SIGKILL, nothing after this point of the run is written."""


def _kill_at(m, owner, name: str, call: int) -> None:
    """``owner.name`` dies at its ``call``-th call (1-based), before doing anything."""
    real, calls = getattr(owner, name), [0]

    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            raise _Killed
        return real(*args, **kwargs)

    m.setattr(owner, name, dying)


def _weights(path: Path) -> dict:
    return load_checkpoint(path)["model"]


def _assert_same_run(a: Path, b: Path) -> None:
    """Same metrics (times aside), bit-identical best.pt and last.pt weights, same scores."""
    ma, mb = (runstore.load_metrics(r).drop(columns=TIME_COLUMNS) for r in (a, b))
    assert ma.equals(mb)
    for name in ("best.pt", "last.pt"):
        wa, wb = _weights(a / name), _weights(b / name)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
    sa, sb = runstore.load_summary(a), runstore.load_summary(b)
    for key in ("epochs", "epochs_run", "best_epoch", "best_val_loss", "val", "confusion_matrix"):
        assert sa[key] == sb[key], key


# ----------------------------------------------------------------------------- epochs


def test_resuming_with_fewer_epochs_than_last_pt_holds_is_refused(demo_root, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _kill_at(m, engine, "train_one_epoch", 4)  # epochs 1-3 saved, killed in epoch 4
        with pytest.raises(_Killed):
            engine.fit(_cfg(demo_root, tmp_path, epochs=4), resume=True)
    run = runstore.run_dir(_cfg(demo_root, tmp_path))
    before = (run / "config.yaml").read_bytes(), (run / "last.pt").read_bytes()
    with pytest.raises(CitysegError, match=r"this run was trained for 3 epochs, 2 were asked; choose another name"):
        engine.fit(_cfg(demo_root, tmp_path, epochs=2), resume=True)
    assert not (run / "summary.json").exists()
    assert ((run / "config.yaml").read_bytes(), (run / "last.pt").read_bytes()) == before  # untouched


def test_an_interrupted_extension_is_unfinished_until_resumed_and_ends_as_a_straight_run(demo_root, tmp_path,
                                                                                       monkeypatch):
    straight = engine.fit(_cfg(demo_root, tmp_path / "straight", epochs=4))
    short, longer = _cfg(demo_root, tmp_path / "e", epochs=2), _cfg(demo_root, tmp_path / "e", epochs=4)
    run = engine.fit(short)
    results = {n: (run / n).read_bytes() for n in ("summary.json", "per_image.npz")}
    with monkeypatch.context() as m:
        _kill_at(m, engine, "train_one_epoch", 2)  # the extension saved epoch 3, died in epoch 4
        with pytest.raises(_Killed):
            engine.fit(longer, resume=True)
    # the 2-epoch run's results are kept whole in the run's history; the run is not finished at any length
    assert {n: (run / "history" / "2_epochs" / n).read_bytes() for n in results} == results
    assert not (run / "summary.json").exists() and not (run / "per_image.npz").exists()
    assert not runstore.is_finished(run, short) and not runstore.is_finished(run, longer)
    with pytest.raises(CitysegError, match=r"this run was trained for 3 epochs, 2 were asked"):
        runstore.train_or_load(short, verbose=False)
    assert runstore.train_or_load(longer, verbose=False) == run
    _assert_same_run(straight, run)
    assert load_checkpoint(run / "best.pt")["epoch"] == runstore.load_summary(run)["best_epoch"]


def test_a_run_left_mid_extension_by_an_older_version_is_not_reused(demo_root, tmp_path):
    run = engine.fit(_cfg(demo_root, tmp_path, epochs=1))
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 2"))  # what the extension wrote first
    with pytest.raises(CitysegError, match=r"extension of this 1-epoch run to 2 epochs was interrupted"):
        runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=1), verbose=False)
    runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=2), verbose=False)
    assert runstore.load_summary(run)["epochs"] == 2 and (run / "history" / "1_epochs" / "summary.json").is_file()
    # a run an older version resumed with fewer epochs than last.pt held: more epochs run than it says
    summary = run / "summary.json"
    summary.write_text(summary.read_text().replace('"epochs_run": 2', '"epochs_run": 3'))
    with pytest.raises(CitysegError, match=r"summary.json says 2 epochs but 3 were run; retrain"):
        runstore.train_or_load(_cfg(demo_root, tmp_path, epochs=2), verbose=False)


def test_fit_never_overwrites_a_run_nor_extends_one_without_its_last_pt(demo_root, tmp_path):
    run = engine.fit(_cfg(demo_root, tmp_path, epochs=1))
    summary = (run / "summary.json").read_bytes()
    (run / "last.pt").unlink()
    with pytest.raises(CitysegError, match=r"already holds this run; pass --resume"):
        engine.fit(_cfg(demo_root, tmp_path, epochs=1))
    with pytest.raises(CitysegError, match=r"cannot extend this 1-epoch run to 2 epochs: its last.pt is missing"):
        engine.fit(_cfg(demo_root, tmp_path, epochs=2), resume=True)
    assert (run / "summary.json").read_bytes() == summary
    assert engine.fit(_cfg(demo_root, tmp_path, epochs=1), resume=True) == run  # finished: reused as it is


# ----------------------------------------------------------------------------- kills between two writes


def test_a_kill_between_last_pt_and_metrics_csv_loses_no_row(demo_root, tmp_path, monkeypatch):
    cfg = _cfg(demo_root, tmp_path)
    with monkeypatch.context() as m:
        _kill_at(m, runstore, "write_metrics", 2)  # the final epoch's last.pt is written, its row is not
        with pytest.raises(_Killed):
            engine.fit(cfg, resume=True)
    run = runstore.run_dir(cfg)
    assert list(runstore.load_metrics(run)["epoch"]) == [1]
    engine.fit(cfg, resume=True)
    metrics = runstore.load_metrics(run)
    assert list(metrics["epoch"]) == [1, 2]
    assert list(metrics["val_loss"]) == [h["val_loss"] for h in load_checkpoint(run / "last.pt")["history"]]


def test_a_resumed_and_extended_run_times_its_whole_wall_time(demo_root, tmp_path, monkeypatch):
    """summary.json's wall_time_s covers every epoch of the run, not only the last process's."""
    import time

    slow, real = 0.25, engine.train_one_epoch  # every kept epoch takes at least `slow` seconds of wall time

    def slow_epoch(*args, **kwargs):
        time.sleep(slow)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", slow_epoch)
    t0 = time.perf_counter()
    with monkeypatch.context() as m:
        _kill_at(m, engine, "train_one_epoch", 3)  # epochs 1-2 saved, killed in epoch 3
        with pytest.raises(_Killed):
            engine.fit(_cfg(demo_root, tmp_path, epochs=3), resume=True)
    run = engine.fit(_cfg(demo_root, tmp_path, epochs=3), resume=True)  # trains epoch 3 only
    engine.fit(_cfg(demo_root, tmp_path, epochs=5), resume=True)  # epochs 4-5
    elapsed = time.perf_counter() - t0
    three, five = runstore.read_json(run / "history" / "3_epochs" / "summary.json"), runstore.load_summary(run)
    assert 3 * slow <= three["wall_time_s"] < five["wall_time_s"], (three["wall_time_s"], five["wall_time_s"])
    assert 5 * slow <= five["wall_time_s"] < elapsed
    assert five["wall_time_s"] > five["train_time_s"]  # it holds validation too


def test_a_run_resumed_for_its_final_evaluation_keeps_its_training_peak_memory(demo_root, tmp_path, monkeypatch):
    """Killed after its last epoch (a time limit during the long full-resolution evaluation), the run
    is resumed by a process that only evaluates and peaks lower: summary.json keeps the training peak."""
    cfg = _cfg(demo_root, tmp_path)
    with monkeypatch.context() as m:
        m.setattr(engine, "peak_memory_mb", lambda device: 500.0)  # the training process's peak
        _kill_at(m, runstore, "write_summary", 1)
        with pytest.raises(_Killed):
            engine.fit(cfg, resume=True)
    monkeypatch.setattr(engine, "peak_memory_mb", lambda device: 100.0)  # the evaluating process's
    run = engine.fit(cfg, resume=True)
    assert runstore.load_summary(run)["peak_memory_mb"] == 500.0
    engine.fit(_cfg(demo_root, tmp_path, epochs=3), resume=True)  # an extension: the largest of all
    assert runstore.load_summary(run)["peak_memory_mb"] == 500.0


def test_the_cli_says_after_which_epoch_it_resumes(demo_root, tmp_path, monkeypatch, capsys):
    args = [*_cli_args(demo_root, tmp_path, epochs=3), "--resume"]
    with monkeypatch.context() as m:
        _kill_at(m, engine, "train_one_epoch", 3)  # epochs 1-2 saved, killed in epoch 3
        with pytest.raises(_Killed):
            main(["train", *args])
    run = runstore.run_dir(_cfg(demo_root, tmp_path, epochs=3))
    assert capsys.readouterr().out.startswith(f"training {run}\n")
    assert main(["train", *args]) == 0
    assert capsys.readouterr().out.startswith(f"resuming {run} after epoch 2 of 3\nepoch 3/3: ")


def test_a_checkpoint_write_killed_before_its_rename_leaves_no_temporary_file_behind(demo_root, tmp_path):
    cfg = _cfg(demo_root, tmp_path, epochs=1)
    run = runstore.run_dir(cfg)
    run.mkdir(parents=True)
    partial = [run / ".last.pt.k9x2.tmp", run / ".best.pt.a1b2.tmp"]
    for p in partial:
        p.write_bytes(b"half a checkpoint")
    other = run / ".notes.txt.tmp"  # not a checkpoint's: left alone
    other.write_text("mine")
    engine.fit(cfg, resume=True)
    assert not any(p.exists() for p in partial) and other.read_text() == "mine"
    assert not list(run.glob(".*.pt.*.tmp")) and runstore.is_finished(run, cfg)


def test_best_pt_is_always_the_recorded_best_epoch(demo_root, tmp_path, monkeypatch):
    """An epoch's first attempt was the best so far and is killed between its two checkpoints; its
    redo (on CUDA, round-off may differ) is not. best.pt never holds an attempt last.pt discarded."""
    cfg = _cfg(demo_root, tmp_path)
    real = engine.evaluate

    def scaled(factor: float, call: int):
        calls = [0]

        def evaluate(*args, **kwargs):
            out = real(*args, **kwargs)
            if not kwargs.get("per_image"):
                calls[0] += 1
                if calls[0] == call:
                    return (out[0] * factor, *out[1:])
            return out

        return evaluate

    with monkeypatch.context() as m:
        m.setattr(engine, "evaluate", scaled(0.01, 2))  # epoch 2's first attempt: the best
        _kill_at(m, engine, "save_checkpoint", 4)  # killed between epoch 2's two checkpoint writes
        with pytest.raises(_Killed):
            engine.fit(cfg, resume=True)
    with monkeypatch.context() as m:
        m.setattr(engine, "evaluate", scaled(100.0, 1))  # a redo of epoch 2 would not be the best
        run = engine.fit(cfg, resume=True)
    assert load_checkpoint(run / "best.pt")["epoch"] == runstore.load_summary(run)["best_epoch"]
    assert load_checkpoint(run / "last.pt")["best_epoch"] == runstore.load_summary(run)["best_epoch"]


# ----------------------------------------------------------------------------- execution settings


def test_augmentation_and_crops_do_not_depend_on_the_number_of_workers(demo_root, tmp_path):
    runs = [engine.fit(_cfg(demo_root, tmp_path / f"w{n}", epochs=1, augment="augment", crop_size=[16, 32],
                            crop_class_balance=0.5, num_workers=n)) for n in (0, 2)]
    a, b = (_weights(r / "best.pt") for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_thread_count_on_cpu_is_refused(demo_root, tmp_path, one_torch_thread):
    run = engine.fit(_cfg(demo_root, tmp_path, epochs=1, device="cpu"))
    assert load_checkpoint(run / "last.pt")["execution"] == {"num_workers": 0, "threads": 1, "world_size": 1,
                                                             "device": "cpu", "cpu_bf16": False}
    torch.set_num_threads(2)
    with pytest.raises(CitysegError, match=r"last.pt: cannot resume with 2 torch threads: this run trained with 1 "):
        engine.fit(_cfg(demo_root, tmp_path, epochs=2, device="cpu"), resume=True)
    assert runstore.load_summary(run)["epochs"] == 1  # refused before anything moved
    torch.set_num_threads(1)
    engine.fit(_cfg(demo_root, tmp_path, epochs=2, device="cpu"), resume=True)
    assert runstore.load_summary(run)["epochs"] == 2


def test_resume_on_another_device_type_is_refused(demo_root, tmp_path, one_torch_thread):
    """A run begun on a GPU (bf16 autocast, channels_last) does not go on in fp32 on the CPU, nor the
    reverse: one run would mix two arithmetics. Refused in one line, before the folder changes."""
    run = engine.fit(_cfg(demo_root, tmp_path, epochs=1, device="cpu"))
    state = load_checkpoint(run / "last.pt")
    state["execution"]["device"] = "cuda"  # as a run begun on a GPU records it
    torch.save(state, run / "last.pt")
    with pytest.raises(runstore.ResumeRefused, match=r"last.pt: cannot resume on cpu: this run trained on cuda .*"
                                                     r"resume it with device=cuda, or retrain it on cpu"):
        engine.fit(_cfg(demo_root, tmp_path, epochs=2, device="cpu"), resume=True)
    assert runstore.load_summary(run)["epochs"] == 1  # refused before anything moved


def test_the_cli_resumes_a_run_on_the_thread_count_it_trained_with(demo_root, tmp_path, one_torch_thread,
                                                                   monkeypatch, capsys):
    """A notebook's run (1 thread) extended from a shell (torch's default: every core) is resumed on
    1 thread, and ends as a straight run does; an explicit OMP_NUM_THREADS is the user's choice, and
    a count other than the run's is refused as by fit."""
    straight = engine.fit(_cfg(demo_root, tmp_path / "straight", epochs=2, device="cpu"))
    shell = engine.fit(_cfg(demo_root, tmp_path / "shell", epochs=1, device="cpu"))
    args = ["train", *_cli_args(demo_root, tmp_path / "shell", epochs=2, device="cpu"), "--resume"]
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert main(args) == 2
    assert "cannot resume with 2 torch threads: this run trained with 1" in capsys.readouterr().err
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert main(args) == 0
    assert "on 1 torch thread(s), as it trained" in capsys.readouterr().out
    assert torch.get_num_threads() == 1
    _assert_same_run(straight, shell)


# ----------------------------------------------------------------------------- unreadable files


def test_a_truncated_run_file_is_one_line_exit_2(demo_root, tmp_path, capsys):
    run = engine.fit(_cfg(demo_root, tmp_path, epochs=1))
    summary = run / "summary.json"
    summary.write_text(summary.read_text()[:40])
    assert main(["train", *_cli_args(demo_root, tmp_path, epochs=1)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{summary}: unreadable JSON" in err and "Traceback" not in err
    with pytest.raises(CitysegError, match="summary.json: unreadable JSON"):
        runstore.load_summary(run)
    (run / "identity.json").write_text("{")
    with pytest.raises(CitysegError, match="identity.json: unreadable JSON"):
        runstore.load_identity(run)
