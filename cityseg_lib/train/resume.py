"""What a resumed run checks and restores from ``last.pt`` before its next epoch, and how ``best.pt``
is kept the weights of the epoch ``last.pt`` records as best.

Checks, before anything in the folder changes: the same computation (the config's computed keys),
no more epochs done than asked, and the same *execution* where it changes results: the DDP world
size (other batches), and on CPU the torch thread count (the order of float reductions). The
DataLoader's workers are recorded too, but do not change results (augmentation draws from a
generator of (seed, epoch, sample)). A CPU run's precision (``cpu_bf16``: bf16 autocast or
float32) is recorded and *kept*: a ``cpu_bf16=auto`` run resumed on a CPU that resolves it
otherwise (with or without AMX) continues with the precision it began with (:func:`recorded_cpu_bf16`).

``best.pt`` is written *after* ``last.pt`` in every epoch, so ``best.pt`` never holds an attempt
of an epoch that ``last.pt`` does not record (a killed epoch is redone, and on CUDA the redo may
differ in round-off). A kill between the two leaves ``last.pt`` recording its own epoch as the
best and ``best.pt`` older: :func:`repair_best` writes ``best.pt`` from ``last.pt``'s weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.strict import config_to_dict
from cityseg_lib.train import distributed as D
from cityseg_lib.train.checkpoint import load_checkpoint, save_checkpoint
from cityseg_lib.train.setup import resolve_device

__all__ = ["execution", "load_last", "recorded_cpu_bf16", "check_execution", "adopt_threads", "restore", "carried",
           "best_state", "repair_best", "check_best"]


def execution(workers: int, device: torch.device, cpu_bf16: bool = False) -> dict:
    """How this process trains: recorded in ``last.pt`` and compared on resume. ``cpu_bf16``:
    whether it trains on the CPU under bf16 autocast (False on CUDA, whose precision is the config's)."""
    return {"num_workers": workers, "threads": torch.get_num_threads(), "world_size": D.world_size(),
            "device": device.type, "cpu_bf16": bool(cpu_bf16) and device.type == "cpu"}


def load_last(last_path: Path) -> dict:
    """``last.pt``, read once before the model is built (its precision decides the model's memory
    format) and handed to :func:`restore`."""
    return load_checkpoint(last_path)


def recorded_cpu_bf16(state: dict | None) -> bool | None:
    """The CPU precision the run of ``last.pt``'s ``state`` trained with (True: bf16 autocast), to
    be kept on resume; None without a ``last.pt`` (a new run resolves its config). A ``last.pt`` of
    an older version recorded none: float32, the only CPU precision then."""
    if state is None:
        return None
    return bool((state.get("execution") or {}).get("cpu_bf16", False))


def check_execution(saved: dict | None, now: dict, where: Path) -> None:
    """Refuse (:class:`runstore.ResumeRefused`, one line) an execution that would change the results."""
    if not saved:  # a last.pt of an older version: nothing to compare
        return
    if saved.get("world_size", 1) != now["world_size"]:
        raise runstore.ResumeRefused(
            f"{where}: cannot resume on {now['world_size']} process(es): this run trained on {saved['world_size']} "
            f"(DDP batches differ); resume it with torchrun --nproc-per-node {saved['world_size']}")
    if saved.get("device", now["device"]) != now["device"]:
        raise runstore.ResumeRefused(
            f"{where}: cannot resume on {now['device']}: this run trained on {saved['device']} (the arithmetic "
            f"differs: other kernels, amp/channels_last or cpu_bf16); resume it with device={saved['device']}, "
            f"or retrain it on {now['device']} (--retrain keeps the earlier run in .replaced/)")
    if saved.get("device") == now["device"] == "cpu" and bool(saved.get("cpu_bf16", False)) != now["cpu_bf16"]:
        # fit keeps the recorded precision (recorded_cpu_bf16); another would mix two precisions in one run
        was = "bf16 autocast" if saved.get("cpu_bf16") else "float32"
        raise runstore.ResumeRefused(f"{where}: cannot resume in {'bf16 autocast' if now['cpu_bf16'] else 'float32'}: "
                                     f"this run trained in {was} on the CPU")
    if saved.get("device") == now["device"] == "cpu" and saved.get("threads") != now["threads"]:
        raise runstore.ResumeRefused(
            f"{where}: cannot resume with {now['threads']} torch threads: this run trained with {saved['threads']} "
            f"(CPU results depend on the count); set it back (torch.set_num_threads({saved['threads']}), "
            f"OMP_NUM_THREADS={saved['threads']}, or a sweep's cpu_threads={saved['threads']})")


def adopt_threads(run_dir: Path, device: str) -> int | None:
    """Set torch's CPU thread count to the one ``run_dir/last.pt`` trained with; returns it, or None
    when there is nothing to adopt (``OMP_NUM_THREADS`` set: the user's choice; no ``last.pt`` or no
    record; not CPU then and now; the same count).

    For ``cityseg train --resume`` in a shell: the notebooks and sweeps train each run on 1 thread,
    a shell's torch takes every core, and :func:`check_execution` would refuse the mismatch."""
    last = runstore.checkpoint_path(run_dir, "last")
    if "OMP_NUM_THREADS" in os.environ or resolve_device(device).type != "cpu" or not last.is_file():
        return None
    saved = load_checkpoint(last).get("execution") or {}
    if saved.get("device") != "cpu" or not saved.get("threads") or saved["threads"] == torch.get_num_threads():
        return None
    torch.set_num_threads(saved["threads"])
    return saved["threads"]


def restore(last_path: Path, cfg: TrainConfig, model, optimizer, scheduler, now: dict,
            state: dict | None = None) -> dict:
    """Check ``last.pt`` (``state``: its content, when :func:`load_last` read it already) against
    ``cfg`` and ``now`` (:func:`execution`), then load its weights, optimiser, scheduler and RNG
    state; returns the checkpoint (epoch, best, history...)."""
    state = load_checkpoint(last_path) if state is None else state
    runstore.check_same_computation(state["config"], cfg, last_path)
    if state["epoch"] > cfg.epochs:  # the run would be reported as cfg.epochs long, with more epochs in it
        raise runstore.longer_run(last_path.parent, state["epoch"], cfg.epochs)
    check_execution(state.get("execution"), now, last_path)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CitysegError(f"{last_path}: incompatible checkpoint ({str(e).splitlines()[0]})") from None
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    return state


def carried(state: dict) -> tuple[float, float]:
    """What the processes that trained the epochs of ``last.pt``'s ``state`` measured, which a resumed
    or extended run carries on so that its ``summary.json`` covers the whole run as an uninterrupted
    one's does: ``(wall_time_s, peak_memory_mb)``, their wall-clock seconds from the start of training
    to the end of its last epoch (summed; the lost part of a killed epoch and each process's start-up
    not counted) and the largest of their peaks (a process that only redoes the final evaluation
    peaks lower than training). A ``last.pt`` of an older version recorded neither: the epochs'
    training time (their validation left out) and 0."""
    return (float(state.get("wall_time_s", sum(h["epoch_time_s"] for h in state["history"]))),
            float(state.get("peak_memory_mb", 0.0)))


def best_state(weights: dict, epoch: int, val_loss: float, cfg: TrainConfig) -> dict:
    """What ``best.pt`` holds."""
    return {"model": weights, "epoch": epoch, "val_loss": val_loss, "config": config_to_dict(cfg)}


def _best_epoch(best_path: Path) -> int | None:
    return load_checkpoint(best_path)["epoch"] if best_path.is_file() else None


def repair_best(best_path: Path, state: dict, cfg: TrainConfig) -> None:
    """Write ``best.pt`` from ``last.pt``'s ``state`` when its epoch is the recorded best and
    ``best.pt`` does not hold it (killed between the two writes). Main rank."""
    if state["best_epoch"] == state["epoch"] and _best_epoch(best_path) != state["epoch"]:
        save_checkpoint(best_path, best_state(state["model"], state["epoch"], state["best_val_loss"], cfg))


def check_best(best_path: Path, best_epoch: int, map_location) -> dict:
    """``best.pt``, refused when it is not the epoch the run records as its best (a ``best.pt`` of
    an attempt that an older version wrote before ``last.pt`` and that was then redone otherwise)."""
    best = load_checkpoint(best_path, map_location=map_location)
    if best.get("epoch") != best_epoch:
        raise CitysegError(f"{best_path}: holds epoch {best.get('epoch')}, but the run's best epoch is {best_epoch} "
                           "(an interrupted attempt's; that epoch's weights are lost): retrain the run")
    return best
