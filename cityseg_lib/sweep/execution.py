"""Running a rung's trials: inline on one device, or one spawned worker process per device."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import sys
import threading
import time
import traceback
from typing import Any, Callable, Iterator

from cityseg_lib.config import TrainConfig
from cityseg_lib.sweep.config import SweepConfig
from cityseg_lib.sweep.trials import run_trial

__all__ = ["resolve_devices", "Workers", "trial_threads", "torch_threads"]


def resolve_devices(devices: list[str]) -> list[str]:
    """``[auto]`` -> every visible GPU (one worker each), else ``[cpu]``; explicit lists as given."""
    if list(devices) != ["auto"]:
        return list(devices)
    import torch

    n = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(n)] if n else ["cpu"]


def _die_with_parent(parent_pid: int) -> None:
    """Make a worker end when the sweep process ends, even by SIGKILL.

    An orphaned worker would keep training into a trial folder that the restarted sweep resumes
    at the same time. Linux kills us with the parent (PR_SET_PDEATHSIG); elsewhere a watchdog
    thread notices the new parent pid within a second.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker(device: str, threads: int, tasks, results, parent_pid: int) -> None:
    """A worker process: run trials from ``tasks`` on ``device`` until a ``None`` arrives.

    ``threads`` is the torch thread count of every trial (see :func:`trial_threads`).
    """
    _die_with_parent(parent_pid)
    import torch

    torch.set_num_threads(threads)
    while (item := tasks.get()) is not None:
        key, trial_cfg = item
        try:
            results.put((key, run_trial(dataclasses.replace(trial_cfg, device=device)), None))
        except BaseException:  # noqa: BLE001 - reported to the parent, which stops the sweep
            results.put((key, None, f"trial on {device} crashed:\n{traceback.format_exc()}"))
            return


class Workers:
    """One spawned process per device, pulling trials from a queue (kept for the whole sweep)."""

    def __init__(self, devices: list[str], threads: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # CUDA cannot be forked; spawn also behaves the same everywhere
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.procs = [
            ctx.Process(target=_worker, args=(d, threads, self.tasks, self.results, os.getpid()),
                        name=f"cityseg-sweep-{i}-{d}")
            for i, d in enumerate(devices)
        ]
        for p in self.procs:
            p.start()

    def run(self, jobs: list[tuple[Any, TrainConfig]], on_result: Callable[[Any, dict], None]) -> None:
        for job in jobs:
            self.tasks.put(job)
        remaining = len(jobs)
        while remaining:
            try:
                key, result, crash = self.results.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self.procs if p.exitcode is not None]
                if dead:
                    raise RuntimeError(f"sweep worker {dead[0].name} died (exit code {dead[0].exitcode}); "
                                       "run the sweep again to resume") from None
                continue
            if crash:
                raise RuntimeError(crash)
            on_result(key, result)
            remaining -= 1

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()

    def kill(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join()


def trial_threads(cfg: SweepConfig) -> int:
    """Torch threads of every trial: ``cpu_threads``, else this process's count.

    CPU results depend on the thread count (the order of float reductions), and a sweep must not
    depend on how many workers ran it, so every worker uses the same count as an inline run.
    With several CPU workers set ``cpu_threads`` to cores / workers, or they oversubscribe.
    """
    import torch

    return cfg.cpu_threads or torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run inline trials with ``threads`` torch threads, and give the caller its count back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
