"""How a sweep's trials run: on the executor of its settings, on one device, with one thread count.

The trials of a rung go to the executor together (:mod:`cityseg_lib.execute`: ``local`` runs them
here one after another, ``ray`` as Ray tasks, one GPU or ``cpus_per_run`` CPUs each) and the rung
waits for all of them before it decides. Ray also does what a hand-written pool would have to:
scheduling, a worker that dies is retried (the trial resumes from ``last.pt``), and workers end
with the sweep process (the embedded cluster is torn down with it; a remote cluster ends the
driver's tasks when the driver disconnects).
"""

from __future__ import annotations

from collections.abc import Callable

from cityseg_lib.execute import Executor, get_executor
from cityseg_lib.sweep.config import SweepConfig

__all__ = ["sweep_executor", "trial_device", "trial_threads", "check_trial_device"]


def sweep_executor(cfg: SweepConfig, executor: str | Executor | None = None,
                   log: Callable[[str], None] = print) -> Executor:
    """``executor`` (the command line's) when given, else the params' ``executor``, else
    ``$CITYSEG_EXECUTOR``, else local. Nothing starts until the first trial is submitted."""
    if executor is not None and not isinstance(executor, str):
        return executor
    source = "--executor" if executor else f"sweep {cfg.name}: executor"
    return get_executor(executor or cfg.executor or None, cpus_per_run=cfg.cpus_per_run, source=source, log=log)


def trial_device(cfg: SweepConfig) -> str:
    """The device of every trial: ``auto`` (a Ray task's GPU, else this machine's) or the one named."""
    return cfg.devices[0]


def trial_threads(cfg: SweepConfig) -> int:
    """Torch threads of every trial: ``cpu_threads``, else this process's count.

    CPU results depend on the thread count (the order of float reductions), and a sweep must not
    depend on its executor or on how many trials ran at once, so every trial gets the same count
    wherever it runs. With several CPU trials at once set ``cpu_threads`` to cores / trials, or
    they oversubscribe the machine.
    """
    import torch

    return cfg.cpu_threads or torch.get_num_threads()


def check_trial_device(cfg: SweepConfig, executor: Executor) -> None:
    """Refuse, before any folder, a device this machine lacks when the trials run here (local);
    on Ray the worker's device decides, and a worker without it stops the sweep (not recorded)."""
    if executor.kind != "local" or trial_device(cfg) == "auto":
        return
    from cityseg_lib.errors import CitysegError
    from cityseg_lib.train.setup import resolve_device

    try:
        resolve_device(trial_device(cfg))
    except CitysegError as e:
        raise CitysegError(f"sweep {cfg.name}: devices={cfg.devices}: {e}") from None
