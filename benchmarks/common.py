"""Helpers shared by the benchmarks: generated data, provenance, tables, JSON, timing, memory.

Every benchmark writes ``reports/benchmarks/NAME.json`` holding the device, date and commit
(from :func:`cityseg_lib.config.environment_info`), its settings, its results, its target and
whether the target was met, and prints a plain-text table.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from cityseg_lib.provenance import environment_info
from cityseg_lib.paths import project_root, reports_dir

__all__ = [
    "FULL_SIZE",
    "bench_data_root",
    "ensure_demo_data",
    "provenance",
    "write_report",
    "format_table",
    "sync",
    "autocast_for",
    "train_step",
    "training_flops",
    "RssSampler",
    "peak_cuda_mb",
]

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the network

#: The official Cityscapes frame size (W, H), at which the benchmark data is generated.
FULL_SIZE = (2048, 1024)


# ----------------------------------------------------------------------------- data


def bench_data_root() -> Path:
    """``PROJECT/data/bench`` (git-ignored): generated frames and caches of the benchmarks."""
    return project_root() / "data" / "bench"


def _count_frames(root: Path, split: str) -> int:
    return len(list((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png")))


def ensure_demo_data(train: int, val: int = 0, *, root: Path | None = None, seed: int = 0) -> Path:
    """Full-size (2048x1024) demo frames under ``data/bench/demo_<train>_<val>``; reused when complete."""
    root = root or bench_data_root() / f"demo_{train}_{val}"
    marker = root / ".complete"
    if marker.is_file() and _count_frames(root, "train") == train and _count_frames(root, "val") == val:
        return root
    from cityseg_lib.data.demo import make_demo_dataset

    print(f"generating {train} train + {val} val frames at {FULL_SIZE[0]}x{FULL_SIZE[1]} in {root} ...", flush=True)
    t0 = time.perf_counter()
    make_demo_dataset(root, train=train, val=val, test=0, size=FULL_SIZE, seed=seed, coarse=False,
                      workers=max(1, min(os.cpu_count() or 1, 8)))
    marker.write_text(f"train={train} val={val} size={FULL_SIZE}\n")
    print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    return root


# ----------------------------------------------------------------------------- reporting


def provenance() -> dict:
    """Device, date (UTC) and commit, plus the package versions of :func:`environment_info`."""
    env = environment_info()
    env["date"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    env["torch_threads"] = torch.get_num_threads()
    env["load_average"] = [round(v, 2) for v in os.getloadavg()]  # other processes competing for the CPUs
    return env


def _clean(value):
    """JSON-safe: NaN/inf -> None, tuples -> lists, Paths -> str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(name: str, *, benchmark: str, settings: dict, results, target: dict, out: Path | None = None,
                 env: dict | None = None, status: dict | None = None) -> Path:
    """Write ``reports/benchmarks/<name>.json`` atomically (a temporary file, then ``os.replace``: a
    reader, or a kill mid-write, never sees half a file); ``target`` holds at least ``text`` and
    ``met``. ``status`` (e.g. ``{"complete": False, "done": [...], "pending": [...]}``) is stored as
    the report's ``status`` by the benchmarks that write their report after every measurement, so a
    run killed by a time limit leaves what it finished, marked as incomplete."""
    env = env or provenance()
    report = {
        "benchmark": benchmark,
        "device": env["device"],
        "date": env["date"],
        "commit": env["commit"],
        **({"status": status} if status is not None else {}),
        "settings": settings,
        "results": results,
        "target": target,
        "environment": env,
    }
    path = Path(out) if out else reports_dir() / "benchmarks" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(report), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def format_table(headers: list[str], rows: list[list], floatfmt: str = ".2f") -> str:
    """A GitHub-markdown table (readable as plain text too)."""

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else format(v, floatfmt)
        return str(v)

    body = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in body)])


# ----------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    """Wait for queued device work, so a host clock measures it (CUDA kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast_for(device: torch.device, bf16: bool):
    """bf16 autocast on ``device`` (CUDA or CPU), or a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def train_step(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
               images: torch.Tensor, masks: torch.Tensor, bf16: bool) -> torch.Tensor:
    """One optimisation step exactly as :func:`cityseg_lib.train.engine.train_one_epoch` does it."""
    with autocast_for(images.device, bf16):
        logits = model(images)
    loss = criterion(logits.float(), masks)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def training_flops(model: nn.Module, size: tuple[int, int], device: torch.device | str) -> dict:
    """FLOPs of one training image at ``size``: forward, and forward + backward.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions, matmuls and
    attention; a multiply-add is 2 FLOPs) on a batch of one in eager fp32; the count depends on
    neither dtype nor memory format, so it holds for every variant. The loss is a plain mean of
    the logits: a loss adds no counted FLOPs, and this one also runs on the ``meta`` device
    (a model built under ``torch.device("meta")`` is counted without memory or compute).
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train()
    images = torch.empty(1, 3, *size, device=device).normal_() if str(device) != "meta" else \
        torch.empty(1, 3, *size, device=device)
    with FlopCounterMode(display=False) as fwd:
        loss = model(images).float().mean()
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {"forward": int(fwd.get_total_flops()), "train": int(fwd.get_total_flops() + bwd.get_total_flops())}


# ----------------------------------------------------------------------------- memory


def peak_cuda_mb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20


def run_isolated(script: str | Path, spec: dict, timeout: float, env: dict[str, str] | None = None) -> dict:
    """One measurement in a fresh ``python SCRIPT --worker SPEC_JSON`` process: the dict the worker
    printed on a ``RESULT {json}`` line, else ``{"error": ...}`` (its last line of output, or the
    timeout), so a crashing compiler or an out-of-memory variant is recorded, not fatal; and each
    variant's peak memory is its own."""
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return {"error": tail[-1] if tail else f"exit code {proc.returncode}"}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Peak resident memory of this process while the block runs (sampled every ``interval`` s).

    CPU tensors have no allocator counter like ``torch.cuda.max_memory_allocated``, and
    ``ru_maxrss`` only ever grows over the process lifetime, so a thread samples
    ``/proc/self/statm``. ``peak_mb`` is absolute; ``delta_mb`` is over the RSS at entry.
    """

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.base = self.peak = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "RssSampler":
        self.base = self.peak = _rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.base) / 2**20
