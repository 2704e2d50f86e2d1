"""Training engine: fit, checkpoints, exact resume after SIGKILL, NaN stop, DDP (gloo), CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cityseg_lib import runstore
from cityseg_lib.train import engine, optimizers
from cityseg_lib.train.checkpoint import load_checkpoint
from cityseg_lib.cli import main
from cityseg_lib.config import OPTIMIZER_NAMES, load_config
from cityseg_lib.errors import CitysegError

BIN = Path(sys.executable).parent


def _overrides(demo_root, runs, name, **extra):
    base = {
        "name": name, "profile": "test", "runs_dir": str(runs), "data_root": str(demo_root),
        "image_size": "[32, 64]", "model": "simple_fcn", "model_options": "{base_width: 4}",
        "epochs": 2, "batch_size": 2, "lr": 0.01, "step_size": 1, "gamma": 0.5, "progress": "false",
    }
    base.update({k: str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


def _dir(demo_root, runs, name, **extra) -> Path:
    """The run folder the run store gives this test config."""
    return runstore.run_dir(load_config(None, _overrides(demo_root, runs, name, **extra)))


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _values(rows):
    skip = {"epoch_time_s", "train_images_per_s"}
    return [{k: v for k, v in r.items() if k not in skip} for r in rows]


def test_fit_writes_a_complete_run(demo_root, tmp_path):
    run = engine.fit(load_config(None, _overrides(demo_root, tmp_path, "a")))
    for f in ("config.yaml", "environment.json", "metrics.csv", "best.pt", "last.pt", "summary.json"):
        assert (run / f).is_file(), f
    rows = _rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[1]["lr"]) == pytest.approx(0.005)  # StepLR(step_size=1, gamma=0.5)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_epoch"] in (1, 2) and summary["best_val_loss"] == min(float(r["val_loss"]) for r in rows)
    assert 0 <= summary["val"]["miou"] <= 1 and 0 <= summary["val_full_res"]["miou"] <= 1
    # the full-resolution protocol counts pixels at the original 128x64 label size
    assert summary["val_full_res"]["num_pixels"] > summary["val"]["num_pixels"]
    assert json.loads((run / "environment.json").read_text())["torch"] == torch.__version__
    cfg, model = engine.load_run(run)
    assert cfg.name == "a" and model(torch.zeros(1, 3, 32, 64)).shape == (1, 19, 32, 64)


def test_existing_run_is_never_overwritten(demo_root, tmp_path):
    cfg = load_config(None, _overrides(demo_root, tmp_path, "a", epochs=1))
    engine.fit(cfg)
    with pytest.raises(CitysegError, match="--resume"):
        engine.fit(cfg)
    changed = load_config(None, _overrides(demo_root, tmp_path, "a", epochs=1, lr=0.5))
    with pytest.raises(CitysegError, match=r"cannot resume: lr was 0.01 in that run, now 0.5"):
        runstore.prepare(changed, resume=True)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(demo_root, tmp_path, monkeypatch):
    cfg = load_config(None, _overrides(demo_root, tmp_path, "nan", epochs=1))
    run = engine.fit(cfg)
    (run / "summary.json").unlink()
    good = load_checkpoint(run / "last.pt")
    real = engine.build_loss

    def poisoned(name, **kw):
        loss = real(name, **kw)
        return lambda logits, target: loss(logits, target) * float("nan")

    monkeypatch.setattr(engine, "build_loss", poisoned)
    with pytest.raises(CitysegError, match="non-finite training loss"):
        engine.fit(load_config(None, _overrides(demo_root, tmp_path, "nan", epochs=3)), resume=True)
    after = load_checkpoint(run / "last.pt")
    assert after["epoch"] == good["epoch"] == 1
    assert all(torch.equal(after["model"][k], good["model"][k]) for k in good["model"])


def _train_cmd(demo_root, runs, name, *extra):
    return [str(BIN / "cityseg"), "train", *_overrides(demo_root, runs, name, image_size="[64, 128]", epochs=12,
                                                       batch_size=1, step_size=10), *extra]


def _epochs_done(run: Path) -> int:
    try:
        return len(_rows(run))
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(demo_root, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_train_cmd(demo_root, tmp_path, "straight"), check=True, env=env, capture_output=True)
    run = _dir(demo_root, tmp_path, "killed", image_size="[64, 128]", epochs=12, batch_size=1, step_size=10)
    # Kills are triggered by progress, not by wall time, so they land mid-run on fast and slow
    # machines alike: the first a moment after the first checkpoint (mid-epoch), the second once
    # the resumed run has finished two more epochs (just after a checkpoint write began or ended).
    interrupted = []
    for wait_for, pause in ((1, 0.05), (None, 0.0)):
        start = _epochs_done(run)
        target = wait_for if wait_for is not None else start + 2
        proc = subprocess.Popen(_train_cmd(demo_root, tmp_path, "killed", "--resume"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while _epochs_done(run) < target and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(pause)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            interrupted.append(_epochs_done(run))
        proc.wait()
        load_checkpoint(run / "last.pt")  # never left unreadable
    assert len(interrupted) == 2 and interrupted[-1] < 12, f"kills landed after {interrupted} of 12 epochs"
    done = subprocess.run(_train_cmd(demo_root, tmp_path, "killed", "--resume"), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a, b = _dir(demo_root, tmp_path, "straight", image_size="[64, 128]", epochs=12, batch_size=1, step_size=10), run
    assert _values(_rows(a)) == _values(_rows(b))
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    for key in ("best_epoch", "best_val_loss", "val", "val_full_res", "confusion_matrix"):
        assert sa[key] == sb[key], key


@pytest.mark.slow
def test_ddp_two_processes_on_gloo(demo_root, tmp_path, monkeypatch):
    torchrun = BIN / "torchrun"
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", "29517", "-m", "cityseg_lib.cli", "train",
           *_overrides(demo_root, tmp_path, "ddp", batch_size=1)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    # rank 0 alone says what the run does: one start line, one per epoch, one end line
    said = out.stdout.splitlines()
    assert [line.split()[0] for line in said if not line.startswith("epoch ")] == ["training", "best", "run"], said
    assert sum(line.startswith("epoch ") for line in said) == 2, said
    # batch_size is per process: two processes train another batch, in a folder of their own
    single_folder = _dir(demo_root, tmp_path, "ddp", batch_size=1)
    assert not single_folder.exists()
    monkeypatch.setenv("WORLD_SIZE", "2")
    ddp = _dir(demo_root, tmp_path, "ddp", batch_size=1)
    monkeypatch.delenv("WORLD_SIZE")
    assert ddp != single_folder and runstore.load_identity(ddp)["computed"]["world_size"] == 2
    summary = json.loads((ddp / "summary.json").read_text())
    assert summary["world_size"] == 2
    # the all-reduced confusion matrix counts every validation pixel exactly once
    single = engine.fit(load_config(None, _overrides(demo_root, tmp_path, "one", epochs=1)))
    one = json.loads((single / "summary.json").read_text())
    assert summary["val"]["num_pixels"] == one["val"]["num_pixels"] == sum(map(sum, summary["confusion_matrix"]))
    assert len(_rows(ddp)) == 2  # rank 0 alone writes: no duplicated rows
    # the per-image matrices of both ranks, gathered: every frame once, in id order, summing to the split's
    for full_res, key in ((False, "confusion_matrix"), (True, "confusion_matrix_full_res")):
        ids, mats = runstore.load_per_image(ddp, full_res=full_res)
        assert ids == sorted(set(ids)) and len(ids) == summary["val_images"]
        assert mats.sum(0).tolist() == summary[key]



def _torchrun(args: list[str], port: int, timeout: float = 60) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 -m cityseg_lib.cli ARGS`` on CPU (gloo, 1 thread each); on a
    timeout its ranks (each in a session of its own, which outlives a killed torchrun) and torchrun
    are killed, and the result's returncode is None."""
    cmd = [str(BIN / "torchrun"), "--nproc-per-node", "2", "--master-port", str(port), "-m", "cityseg_lib.cli", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        for pid in [*map(int, ranks), proc.pid]:
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate()
        return subprocess.CompletedProcess(cmd, None, out, err)


@pytest.mark.slow
def test_ddp_with_a_rank_that_has_no_validation_image_trains_and_scores_as_one_process(demo_root, tmp_path):
    """One validation image on two processes (a BatchNorm model): rank 1 has none. Evaluating through
    the DDP wrapper left the broadcast of rank 0's BatchNorm statistics to the first validation
    forward, which rank 1 never ran, so the ranks' collectives no longer matched and the run hung in
    its first validation. The epoch's scores are those one process computes from the saved weights."""
    from torch.utils.data import DataLoader

    from cityseg_lib.train.loop import evaluate
    from cityseg_lib.train.losses import build_loss

    extra = dict(model="unet", model_options="{base_width: 4, depth: 2}", epochs=1, max_val_images=1)
    done = _torchrun(["train", *_overrides(demo_root, tmp_path, "oneval", **extra)], port=29519)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    run = next((tmp_path / "test").glob("oneval-*"))
    (row,) = _rows(run)
    cfg, model = engine.load_run(run, "last")
    _, val = engine.build_datasets(cfg)
    loss, scores, _ = evaluate(model, build_loss(cfg.loss), DataLoader(val, cfg.batch_size), torch.device("cpu"))
    assert len(val) == 1 and float(row["val_loss"]) == loss and float(row["val_miou"]) == scores.miou
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["val"]["miou"] == scores.miou



@pytest.mark.slow
def test_a_nan_loss_on_one_rank_stops_every_rank_with_the_same_error(tmp_path):
    """Rank 1's loss turns NaN in the epoch's last step, rank 0's does not (``ddp_one_rank_nan.py``).
    Each rank checked its own loss: rank 1 stopped, rank 0 went on into the epoch's all-reduce and
    waited there for a rank that had left, until torchrun killed it. Now all check the ranks' sum."""
    cmd = [str(BIN / "torchrun"), "--nproc-per-node", "2", "--master-port", "29523",
           str(Path(__file__).with_name("ddp_one_rank_nan.py")), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1],
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]  # both ranks then left the group together
    said = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert said == ["CitysegError: non-finite training loss (nan) at step 2"] * 2, said


@pytest.mark.slow
def test_a_second_torchrun_on_a_run_in_use_stops_with_one_line_at_once(demo_root, tmp_path, monkeypatch):
    """Another process holds the run folder's lock: rank 0 refuses in one line. Rank 1 meanwhile
    waits for the process group, inside torch's C++ code, where the SIGTERM torchrun then sends
    could not run its Python handler (SIGTERM as KeyboardInterrupt): torchrun waited 30 s and
    killed it ("Unable to shutdown process ... via 15, forcefully exiting via 9")."""
    from cityseg_lib.lock import folder_lock

    args = ["train", *_overrides(demo_root, tmp_path, "busy", epochs=1)]
    monkeypatch.setenv("WORLD_SIZE", "2")  # the world size is part of the run's identity
    run = _dir(demo_root, tmp_path, "busy", epochs=1)
    monkeypatch.delenv("WORLD_SIZE")
    with folder_lock(run):
        start = time.monotonic()
        done = _torchrun(args, port=29521)
        seconds = time.monotonic() - start
    assert done.returncode == 1 and done.stderr.count("another run is using this folder") == 1, done.stderr[-2000:]
    assert "forcefully exiting via 9" not in done.stderr and seconds < 30, (seconds, done.stderr[-2000:])


def test_cli_train_evaluate_predict_and_evaluate_folder(demo_root, tmp_path, capsys):
    assert main(["train", *_overrides(demo_root, tmp_path, "cli", epochs=1)]) == 0
    run = _dir(demo_root, tmp_path, "cli", epochs=1)
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--full-res"]) == 0
    full = json.loads((run / "eval_val_fullres.json").read_text())
    # the mIoU with its 95% bootstrap interval over the frames, in the file and on the screen
    low, high = full["miou_ci"]
    assert 0 <= low <= high <= 1 and f"(95% CI {100 * low:.2f}-{100 * high:.2f} over the 3 images;" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(run)]) == 0  # at the training size, from its per-image matrices too
    small = json.loads((run / "eval_val.json").read_text())
    assert small["resolution"] == [32, 64] and len(small["miou_ci"]) == 2 and "95% CI" in capsys.readouterr().out
    # --images N: the split's first N frames, in a file of its own (the all-frames result stays)
    assert main(["evaluate", "--run", str(run), "--full-res", "--images", "2"]) == 0
    first = json.loads((run / "eval_val_fullres_first2.json").read_text())
    assert (first["images"], full["images"]) == (2, 3)
    assert json.loads((run / "eval_val_fullres.json").read_text()) == full
    from cityseg_lib.evaluate.score import evaluate_run
    two = evaluate_run(run, full_res=True, images=2)
    assert two["per_image"].shape[0] == 2 and two["miou"] == pytest.approx(first["miou"], abs=1e-12)
    with pytest.raises(CitysegError, match="images=-1"):
        evaluate_run(run, full_res=True, images=-1)
    preds = tmp_path / "preds"
    assert main(["predict", "--run", str(run), "--input", str(demo_root / "leftImg8bit/val"), "--out", str(preds),
                 "--format", "labelIds"]) == 0
    assert len(list(preds.rglob("*_leftImg8bit.png"))) == 3  # the input tree (CITY/) mirrored
    # official-format predictions scored by evaluate-folder agree with the in-memory protocol
    assert main(["evaluate-folder", "--pred", str(preds), "--gt", str(demo_root), "--out", str(tmp_path / "f.json")]) == 0
    folder = json.loads((tmp_path / "f.json").read_text())
    assert folder["miou"] == pytest.approx(full["miou"], abs=1e-9)
    assert main(["predict", "--run", str(run), "--input", str(demo_root / "leftImg8bit/val"), "--out",
                 str(tmp_path / "ov")]) == 0
    assert len(list((tmp_path / "ov").rglob("*_overlay.png"))) == 3
    capsys.readouterr()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "epochs=x"], "epochs: 'x' is not an int"),
        (["train", "--params", "missing.yaml"], "missing.yaml: params file not found"),
        (["evaluate", "--run", "no/such/run"], "not a run folder"),
        (["predict", "--run", "no/such/run", "--input", ".", "--out", "o"], "not a run folder"),
    ],
)
def test_cli_errors_are_one_line_exit_2(args, fragment, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


@pytest.mark.parametrize("override, fragment", [
    ("model=fcn", "unknown model 'fcn'; valid models: simple_fcn, swin2_jnet, unet"),
    ("model_options={width: 8}", "model 'unet' has no option 'width'; valid options: base_width, depth, dropout"),
])
def test_cli_train_refuses_a_bad_model_before_any_folder_or_data(override, fragment, demo_root, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["train", "--params", "params/smoke/train.yaml", "model=unet", override, f"data_root={demo_root}",
            f"runs_dir={runs}", "name=bad"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert not runs.exists()  # no run folder (not even an empty one) and no training started


def test_cli_train_refuses_a_bad_model_before_importing_the_engine(tmp_path):
    """A typo in the model name is told after the models' import (torch), not after the engine's
    (torchvision, the data pipeline: ~5 s more): the check comes first."""
    code = ("import sys; from cityseg_lib.cli import main; "
            f"rc = main(['train', 'model=fcn', 'runs_dir={tmp_path / 'runs'}']); "
            "print(rc, 'cityseg_lib.train.engine' in sys.modules, 'torchvision' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.stdout.split() == ["2", "False", "False"], p.stdout + p.stderr
    assert "unknown model 'fcn'" in p.stderr


@pytest.mark.parametrize("name, fused", [("adamw", True), ("adam", True), ("adamax", False)])
def test_optimisers_take_torch_fused_kernel_where_it_has_one_and_resume_keeps_the_saved_one(name, fused):
    """AdamW and Adam step with torch's fused kernel (same update, one kernel), Adamax multi-tensor.
    A checkpoint written by the per-parameter loop (runs made before) resumes with that loop, as
    torch's load_state_dict restores the saved group flags: the resumed run stays exact."""
    weights = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    assert tuple(optimizers.OPTIMIZERS) == OPTIMIZER_NAMES  # every name the config takes
    opt = optimizers.make_optimizer(name, weights, lr=0.01, weight_decay=1e-4)
    assert opt.param_groups[0].get("fused") is (True if fused else None)
    assert opt.param_groups[0]["foreach"] is (None if fused else True)

    loop = optimizers.OPTIMIZERS[name]([torch.nn.Parameter(w.detach().clone()) for w in weights], lr=0.01,
                                   weight_decay=1e-4, foreach=False)
    for o in (opt, loop):  # one step each on the same gradients: the same update
        for w in o.param_groups[0]["params"]:
            w.grad = torch.ones_like(w)
        o.step()
    for a, b in zip(opt.param_groups[0]["params"], loop.param_groups[0]["params"]):
        torch.testing.assert_close(a, b)
    opt.load_state_dict(loop.state_dict())
    assert not opt.param_groups[0].get("fused") and opt.param_groups[0]["foreach"] is False


def test_the_optimizer_benchmark_times_every_implementation_and_checks_they_agree(tmp_path):
    """benchmarks/bench_optimizer.py on the smoke profile's models (one round): every optimiser of
    the study with each implementation torch has for it, and the fused AdamW update equal to the
    loop's. Its speed target is the benchmark's own (benchmarks/README.md §3b), not asserted here."""
    out = tmp_path / "optimizer.json"
    done = subprocess.run([sys.executable, "benchmarks/bench_optimizer.py", "--profile", "smoke", "--rounds", "1",
                           "--steps", "1", "--out", str(out)], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: the speed target missed on a busy machine
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"simple_fcn", "unet", "swin2_jnet"}
    for r in results.values():
        assert r["max_abs_update_difference"] < 1e-6
        steps = {f"{o} {i} step" for o, impls in (("adamw", "loop foreach fused"), ("adam", "loop foreach fused"),
                                                    ("adamax", "loop foreach")) for i in impls.split()}
        assert set(r["median_ms"]) == steps | {"train step, adamw loop", "train step, adamw fused"}


def test_side_by_side_step_timing_steps_every_model_in_turn():
    """Seconds per training image of each config, one per round, positive; the process's torch
    threads are restored; bad round counts are refused before any model is built."""
    import torch

    from cityseg_lib.config import TrainConfig
    from cityseg_lib.errors import CitysegError
    from cityseg_lib.train.speed import interleaved_step_seconds

    cfgs = {"fcn": TrainConfig(name="a", profile="test", model="simple_fcn", image_size=(16, 32), batch_size=2,
                               model_options={"base_width": 4}),
            "unet": TrainConfig(name="b", profile="test", model="unet", image_size=(16, 32), batch_size=2,
                                model_options={"base_width": 4, "depth": 2})}
    before = torch.get_num_threads()
    times = interleaved_step_seconds(cfgs, rounds=3, steps=1, warmup=1, threads=1)
    assert torch.get_num_threads() == before
    assert set(times) == {"fcn", "unet"} and all(t.shape == (3,) and (t > 0).all() for t in times.values())
    with pytest.raises(CitysegError, match="rounds=1"):
        interleaved_step_seconds(cfgs, rounds=1)


def test_cuda_without_an_index_resolves_to_this_ranks_gpu(monkeypatch):
    """``device=cuda`` names this rank's GPU with its index (``torch.cuda.set_device`` and DDP's
    ``device_ids`` refuse an index-less device): LOCAL_RANK under torchrun, else the current one."""
    from cityseg_lib.train.setup import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("cuda") == torch.device("cuda", 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("cuda") == torch.device("cuda", 3) == resolve_device("auto")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(CitysegError, match="this machine has 4 CUDA device"):
        resolve_device("cuda:4")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux's resident-set high-water mark")
def test_a_runs_peak_memory_is_its_own_not_the_processs(demo_root, tmp_path):
    """A notebook kernel or Ray worker trains many runs in one process: a run's recorded peak is
    the process's largest resident set during that run, not since the process began."""
    import resource

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    big = bytearray(1536 * 2**20)
    big[::4096] = b"x" * len(big[::4096])  # touch every page: resident
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 > rss_mb() - 1 > 1536
    del big
    before = rss_mb()
    run = engine.fit(load_config(None, _overrides(demo_root, tmp_path, "mem", epochs=1)))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["peak_memory_scope"] == "run"
    assert before - 64 < summary["peak_memory_mb"] < before + 768  # a tiny run; the freed 1.5 GiB is not in it
    assert runstore.run_record(run)["peak_memory_scope"] == "run"


def test_sigterm_stops_training_with_one_line_and_143_and_the_run_resumes(demo_root, tmp_path):
    """SIGTERM (kill, a scheduler's time limit) stops `cityseg train` as Ctrl-C does: one line, the
    shell's exit code 143, no traceback, even when it lands inside a checkpoint write; the run
    then resumes to the end."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = _dir(demo_root, tmp_path, "term", image_size="[64, 128]", epochs=12, batch_size=1, step_size=10)
    proc = subprocess.Popen(_train_cmd(demo_root, tmp_path, "term"), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while _epochs_done(run) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip() == "cityseg train: terminated", err[-2000:]
    done = subprocess.run(_train_cmd(demo_root, tmp_path, "term", "--resume"), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert runstore.load_summary(run)["epochs_run"] == 12


def test_an_error_raised_while_an_interrupt_unwinds_is_the_interrupt():
    """torch.save interrupted mid-write raises its own RuntimeError ("unexpected pos") from the
    KeyboardInterrupt: that is still Ctrl-C (or SIGTERM), not a crash with a traceback."""
    from cityseg_lib import interrupt

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 114264576 vs 114264464")
    except RuntimeError as err:
        assert interrupt.outcome(err) == ("interrupted", 130)
    assert interrupt.outcome(RuntimeError("a bug")) is None


def test_ray_init_keeps_this_processs_sigterm_handler(monkeypatch):
    """Ray's native SIGTERM handler printed a stack dump and aborted the driver (exit -6)."""
    from cityseg_lib.execute import ray_executor

    def handler(signum, frame):
        pass

    class FakeRay:
        def init(self, **kwargs):  # as ray.init installs its own
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        ray_executor._init(FakeRay(), address="x")
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_interrupt_that_left_a_half_built_progress_bar_does_not_break_later_epoch_lines(monkeypatch, capsys):
    """tqdm registers a bar in __new__, before __init__ gives it a display: the notebook stop button
    pressed in between left a bar on which every later tqdm.write failed, until a kernel restart."""
    import warnings

    from tqdm.notebook import tqdm as notebook_tqdm

    from cityseg_lib.train import loop

    monkeypatch.setattr(loop, "tqdm", notebook_tqdm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half_built = notebook_tqdm.__new__(notebook_tqdm)  # registered in __new__
    import sys

    half_built.start_t, half_built.fp = 0.0, sys.stdout  # std __init__ done; its display (container) never made
    try:
        with pytest.raises(AttributeError):
            notebook_tqdm.write("what tqdm.write does with it")
        loop.write_above_bars("epoch 2/3: ...")
        loop.write_above_bars("epoch 3/3: ...")
        out = capsys.readouterr().out
        assert "epoch 2/3: ..." in out and "epoch 3/3: ..." in out
        assert half_built not in getattr(notebook_tqdm, "_instances", set())
    finally:
        getattr(notebook_tqdm, "_instances", set()).discard(half_built)
        half_built.disable = True  # its __del__ closes it: nothing to close
