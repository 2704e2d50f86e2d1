"""What a training or evaluation process sets up before the loop: device, seeds, threads, precision
(autocast and memory format), and the count of its peak memory.

Randomness is re-seeded from ``(seed, epoch, rank)`` at the start of every epoch, so a resumed
run repeats the interrupted epoch bit for bit.
"""

from __future__ import annotations

import os
import random
import resource
import sys
from contextlib import nullcontext

import numpy as np
import torch

from cityseg_lib.errors import CitysegError
from cityseg_lib.train import distributed as D

__all__ = ["DeviceUnavailable", "resolve_device", "configure_cuda", "seed_epoch", "seed_all", "set_cpu_threads",
           "cpu_has_amx", "precision", "autocast", "num_workers", "interactive", "progress_enabled",
           "reset_peak_memory", "peak_memory_mb"]


class DeviceUnavailable(CitysegError):
    """The device named cannot be used on this machine: the caller's settings to fix, not a property of
    the run (a sweep stops on it instead of recording the trial as failed, see ``sweep.run_trial``)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the local CUDA device when present (per torchrun rank), else CPU. A CUDA device
    always comes back with its index: ``cuda`` means this rank's GPU (``LOCAL_RANK`` under torchrun,
    else the current device), as ``torch.cuda.set_device`` and DDP's ``device_ids`` need one."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceUnavailable(f"device {name!r} is not a torch device (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {name!r} requested but CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is None:
        local = os.environ.get("LOCAL_RANK")
        dev = torch.device("cuda", int(local) if local is not None else torch.cuda.current_device())
    if dev.type == "cuda" and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailable(f"device {name!r} requested but this machine has {torch.cuda.device_count()} "
                                "CUDA device(s) (cuda:0 ..)")
    return dev


def configure_cuda(device: torch.device) -> None:
    """How training sets up a CUDA device: current device, cudnn autotuning, TF32 matmuls and
    convolutions (a no-op on other devices). Shared by ``fit`` and the side-by-side timing, so the
    timing runs the kernels training runs."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def seed_epoch(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` of a run seeded ``seed`` on this rank."""
    return (seed * 1_000_003 + epoch * 7919 + D.rank() * 104_729) % 2**31


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_cpu_threads(threads: int = 0) -> int:
    """Use ``threads`` torch CPU threads (0 keeps torch's default); returns the number in use.

    On a small shared CPU one thread is often faster than several: OpenMP threads wait for each
    other at every operation, and one descheduled thread stalls them all.
    """
    if threads and threads > 0:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Xeon since Sapphire Rapids), which run bf16 matrix
    products natively; False where torch cannot tell (a version without the probe)."""
    probe = getattr(getattr(torch, "cpu", None), "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # a probe that fails is no AMX
        return False


def precision(cfg, device: torch.device, recorded: bool | None = None) -> tuple[bool, bool]:
    """``(amp, channels_last)``: whether ``cfg`` trains on ``device`` under bf16 autocast and in
    channels_last memory format. CUDA: ``cfg.amp`` and ``cfg.channels_last``. CPU: both follow
    ``cfg.cpu_bf16`` (``on``; ``auto``: where :func:`cpu_has_amx`; ``off``), or ``recorded``, the
    precision a resumed run began with (``last.pt``), so that it ends as an uninterrupted run does."""
    if device.type == "cuda":
        return bool(cfg.amp), bool(cfg.channels_last)
    if recorded is not None:
        on = bool(recorded)
    else:
        on = cfg.cpu_bf16 == "on" or (cfg.cpu_bf16 == "auto" and cpu_has_amx())
    return on, on


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA or the CPU when ``amp`` (:func:`precision`); else nothing."""
    if amp and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def num_workers(requested: int, device: torch.device) -> int:
    """DataLoader workers: ``requested`` when >= 0, else min(cpus, 8) on CUDA and 0 on CPU."""
    if requested >= 0:
        return requested
    return min(os.cpu_count() or 1, 8) if device.type == "cuda" else 0


def interactive() -> bool:
    """Whether a person watches this process's output as it comes: a notebook cell they run, or
    a terminal. Not in CI (``CI`` set), not in a notebook executed headless (papermill, nbclient,
    ``nbconvert --execute``), not in a worker process, not when stderr is a pipe or a file.

    A notebook kernel tells who runs the cell by the execute request's ``allow_stdin``: JupyterLab,
    Notebook and VS Code send true, nbclient (papermill's executor) sends false, as nothing could
    answer an ``input()``.
    """
    import multiprocessing

    if os.environ.get("CI", "").lower() not in ("", "0", "false") or multiprocessing.parent_process() is not None:
        return False
    kernel = getattr(_ipython(), "kernel", None)
    if kernel is not None:
        try:
            return bool(kernel.get_parent("shell").get("content", {}).get("allow_stdin", False))
        except Exception:  # an ipykernel without get_parent(channel): its last request's setting
            return bool(getattr(kernel, "_allow_stdin", False))
    return sys.stderr is not None and sys.stderr.isatty()


def _ipython():
    """The running IPython shell, or None (IPython is only imported when something else did)."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def progress_enabled(requested: bool | str) -> bool:
    """Progress bars on the main rank: ``True`` always, ``False`` never, ``"auto"`` when
    :func:`interactive` (a notebook a person runs or a terminal; never CI or papermill)."""
    if not D.is_main():
        return False
    return interactive() if requested == "auto" else bool(requested)


def reset_peak_memory(device: torch.device) -> str:
    """Start this run's peak-memory count; returns its scope, ``run`` or ``process``. A notebook
    kernel, a Ray worker or a sweep trains many runs in one process, whose own peak only grows:
    CUDA resets its allocator's counter, Linux the process's resident-set high-water mark
    (``/proc/self/clear_refs``, value 5); elsewhere the count stays the process's since it began."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "run"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "run"
    except OSError:
        return "process"


def peak_memory_mb(device: torch.device) -> float:
    """The largest CUDA allocation, or the process's largest resident set, since :func:`reset_peak_memory`."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
