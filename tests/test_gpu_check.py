"""The one-command GPU check (benchmarks/gpu_check.sh) and the benchmarks it runs: step limits within the
budget, and results that survive a step killed by its time limit (JSON written after every measurement)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def test_the_gpu_check_steps_and_limits_fit_the_budget_most_valuable_first():
    """`gpu_check.sh --limits`: the steps in the order they run, their limits adding up to 480 s at most
    (they added up to 610 s, so the last step could be skipped)."""
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--limits"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    pairs = [line.split() for line in done.stdout.splitlines()]
    steps = {name: int(seconds) for name, seconds in pairs[:-1]}
    assert list(steps) == ["data", "fit", "ddp", "bench_train", "gpu", "fullres"]
    assert pairs[-1] == ["total", str(sum(steps.values()))] and sum(steps.values()) <= 480
    assert all(seconds >= 10 for seconds in steps.values())  # a step below 10 s would be skipped


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.slow
def test_bench_train_killed_by_its_time_limit_keeps_the_finished_models(tmp_path):
    """bench_train.py under `timeout`, killed while the second model runs (SIGTERM to `timeout`, which
    passes it to the whole process group, as at its own expiry): train.json already holds the first
    model's two variants, marked unfinished with the rest pending, and no worker process survives."""
    out = tmp_path / "train.json"
    cmd = ["timeout", "-k", "10", "600", sys.executable, str(BENCH / "bench_train.py"), "--device", "cpu",
           "--models", "simple_fcn", "unet", "--variants", "fp32 eager", "bf16 + channels_last",
           "--warmup", "0", "--steps", "1", "--budget", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=BENCH, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            report = _json(out)
            if report and len(report["results"].get("simple_fcn", {}).get("variants", {})) == 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before its first model was on disk:\n" + proc.stdout.read()[-3000:]
        proc.send_signal(signal.SIGTERM)  # what `timeout` does when its time is up
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    report = json.loads(out.read_text())
    assert report["status"]["finished"] is False
    assert report["status"]["done"][:2] == ["simple_fcn: fp32 eager", "simple_fcn: bf16 + channels_last"]
    assert "unet: bf16 + channels_last" in report["status"]["pending"]
    first = report["results"]["simple_fcn"]["variants"]
    assert all(first[v]["images_per_s"] > 0 for v in ("fp32 eager", "bf16 + channels_last")), first
    assert "simple_fcn  fp32 eager" in output  # the lines as they came
    for _ in range(100):  # the worker of the second model went with the group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a process of the killed run's group is still alive")


def test_bench_train_total_timeout_records_what_it_could_not_run(tmp_path):
    """--total-timeout: a variant gets at most what is left of the run; one that cannot start is recorded
    as not started (with the ratio of what ran), and the run still ends well and in time."""
    out = tmp_path / "train.json"
    cmd = [sys.executable, str(BENCH / "bench_train.py"), "--device", "cpu", "--models", "simple_fcn", "unet",
           "--variants", "fp32 eager", "bf16 + channels_last", "--warmup", "0", "--steps", "1", "--budget", "1",
           "--total-timeout", "1", "--out", str(out)]
    t = time.monotonic()
    done = subprocess.run(cmd, cwd=BENCH, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert time.monotonic() - t < 60  # no worker was started
    report = json.loads(out.read_text())
    assert report["status"] == {"finished": True, "done": report["status"]["done"], "pending": []}
    errors = [r.get("error", "") for m in report["results"].values() for r in m["variants"].values()]
    assert len(errors) == 4 and all(e.startswith("not started: the run's --total-timeout of 1 s") for e in errors)
    assert "SKIPPED" in done.stdout


def test_bench_train_variants_target_names_the_cuda_pair():
    """The GPU check asks for `--variants target`: the two variants of the >= 2x target, which must exist."""
    sys.path.insert(0, str(BENCH))
    try:
        import bench_train
    finally:
        sys.path.remove(str(BENCH))
    assert {bench_train.BASELINE, bench_train.OPTIMISED} <= set(bench_train.VARIANTS["cuda"])
    assert {bench_train.BASELINE, bench_train.OPTIMISED} <= set(bench_train.VARIANTS["cpu"]) | set(
        bench_train.VARIANTS["cpu_compile"])
    assert "--variants target" in (BENCH / "gpu_check.sh").read_text()


@pytest.fixture
def gpu_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import gpu

    return gpu


def _gpu_args(demo_root: Path, out: Path, *models: str) -> list[str]:
    return ["--reduced", "--device", "cpu", "--models", *models, "--warmup", "0", "--steps", "1", "--eval-steps", "1",
            "--workers", "0", "--data-root", str(demo_root), "--out", str(out)]


def test_gpu_report_stopped_after_the_first_model_keeps_its_row_and_projection(gpu_module, demo_root, tmp_path,
                                                                               monkeypatch, one_torch_thread):
    """gpu.py writes its JSON after every model: a run stopped while measuring the second model (here an
    interrupt) leaves the first model's measurement and its share of the projection, marked unfinished."""
    real = gpu_module.measure_model

    def measure(name, *args, **kwargs):
        if name == "unet":
            raise KeyboardInterrupt  # stands in for the step's time limit
        return real(name, *args, **kwargs)

    monkeypatch.setattr(gpu_module, "measure_model", measure)
    out = tmp_path / "gpu.json"
    with pytest.raises(KeyboardInterrupt):
        gpu_module.main(_gpu_args(demo_root, out, "simple_fcn", "unet"))
    report = json.loads(out.read_text())
    assert report["status"] == {"finished": False, "done": ["simple_fcn"], "pending": ["unet"]}
    fcn = report["results"]["models"]["simple_fcn"]
    assert fcn["images_per_s"] > 0 and fcn["eval_images_per_s"] > 0 and fcn["train_gflop_per_image"] > 0
    assert report["results"]["projected_hours_by_model"]["simple_fcn"] > 0
    assert "unet" not in report["results"]["projected_hours_by_model"]
    assert report["results"]["flop_floor"]["hours_by_model"]["unet"] > 0  # GPU-free, written before measuring


def test_gpu_report_times_evaluation_without_compiling_again(gpu_module, demo_root, tmp_path, monkeypatch,
                                                            one_torch_thread):
    """With --compile, the evaluation timing runs the eager model: no second compilation for eval mode under
    no_grad (Dynamo guards on both), which --eval-compiled brings back."""
    import torch
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()  # counts the graphs Dynamo hands to the backend; runs them eagerly
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real_compile(model, backend=counter))
    gpu_module.main(_gpu_args(demo_root, tmp_path / "a.json", "simple_fcn") + ["--compile"])
    train_only = counter.frame_count
    assert train_only >= 1
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["settings"]["eval_compiled"] is False and report["results"]["models"]["simple_fcn"]["eval_compiled"] is False
    counter.clear()
    gpu_module.main(_gpu_args(demo_root, tmp_path / "b.json", "simple_fcn") + ["--compile", "--eval-compiled"])
    assert counter.frame_count > train_only


def test_the_study_plan_reads_the_source_params_under_cityseg_home_and_prices_the_checkpoints(tmp_path):
    """`gpu.py --plan-only` under $CITYSEG_HOME (which moves outputs, not params/) still plans both sweeps
    (it had dropped them: 23 runs), and its disk line is runs x parameters x 16 bytes per model."""
    import re

    import torch

    from cityseg_lib.models import build_model

    env = {**os.environ, "CITYSEG_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("CITYSCAPES_DATASET", None)
    done = subprocess.run([sys.executable, str(BENCH / "gpu.py"), "--plan-only"], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "06 sweep unet: rung 0, 36 trials" in out and "06 sweep swin2_jnet: tuned winner" in out
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if re.match(r"\|\s*0[2-6] ", line)]
    runs = {m: sum(int(r[2]) for r in rows if r[1] == m) for m in ("simple_fcn", "unet", "swin2_jnet")}
    assert sum(runs.values()) == int(re.search(r"\): (\d+) runs", out).group(1)) > 150
    with torch.device("meta"):
        params = {"unet": sum(p.numel() for p in build_model("unet").parameters()),
                  "swin2_jnet": sum(p.numel() for p in build_model(
                      "swin2_jnet", encoder="swinv2_base_window12to24_192to384", pretrained=False,
                      img_size=(768, 768)).parameters())}
    disk = re.search(r"come to about (\d+) GB \(simple_fcn \d+ GB, swin2_jnet (\d+) GB, unet (\d+) GB", out)
    assert disk, out[-800:]
    swin, unet = (round(runs[m] * params[m] * 16 / 1e9) for m in ("swin2_jnet", "unet"))
    assert (int(disk.group(2)), int(disk.group(3))) == (swin, unet) and abs(int(disk.group(1)) - swin - unet) <= 1
