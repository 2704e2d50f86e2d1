"""The executor interface, the ``local`` executor, and how the one setting is resolved.

An executor maps a module-level function over jobs and yields ``(key, result)`` as each job
finishes. ``local`` runs them here in order; ``ray`` (:mod:`.ray_executor`) runs them as Ray
tasks, several at once. Callers never depend on the order of results (the sweep sorts its rows,
:func:`cityseg_lib.execute.train_all` returns folders in the order of its configs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from cityseg_lib.errors import CitysegError

__all__ = ["ENV_VAR", "EXECUTORS", "Executor", "LocalExecutor", "executor_name", "get_executor", "use_executor",
           "torch_threads"]

#: The environment variable that selects the executor (notebooks, and the CLI's children).
ENV_VAR = "CITYSEG_EXECUTOR"
EXECUTORS = ("local", "ray")

Job = tuple[Hashable, tuple]


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (0: leave them), then give the caller its count back.

    CPU results depend on the thread count (the order of float reductions), so every run of a
    study uses the same count whether it runs here or in a Ray worker.
    """
    import torch

    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def executor_name(name: str | None = None, source: str = "--executor") -> str:
    """``name`` when given, else ``$CITYSEG_EXECUTOR``, else ``local``; an unknown name, or ``ray``
    with a ``$RAY_ADDRESS`` that is no cluster address, is one line."""
    if name:
        where = source
    else:
        name, where = os.environ.get(ENV_VAR, ""), ENV_VAR
    name = (name or "local").strip().lower()
    if name not in EXECUTORS:
        raise CitysegError(f"{where}={name}: unknown executor (valid: {', '.join(EXECUTORS)})")
    if name == "ray":  # the cluster it joins, checked where the setting enters (nothing imports Ray yet)
        from cityseg_lib.execute.ray_address import check_ray_address

        check_ray_address()
    return name


def use_executor(name: str | None, source: str = "--executor") -> str:
    """Make ``name`` (from the command line) the executor of this process and of the notebooks it
    starts, by setting ``$CITYSEG_EXECUTOR``; ``None`` keeps the current setting. Returns the name."""
    resolved = executor_name(name, source)
    if name:
        os.environ[ENV_VAR] = resolved
    return resolved


class Executor:
    """Runs jobs ``(key, args)`` as ``fn(*args)``; yields ``(key, fn(*args))`` as each finishes.

    ``threads`` is the torch thread count of every job (0: the process's current count). A job
    that raises stops the iteration: a :class:`CitysegError` arrives as a one-line
    :class:`CitysegError`, anything else with its traceback; jobs still running are cancelled
    (a cancelled training run resumes from ``last.pt`` next time).
    """

    kind = "base"

    def run(self, fn: Callable[..., Any], jobs: Iterable[Job], threads: int = 0) -> Iterator[tuple[Hashable, Any]]:
        raise NotImplementedError

    def capacity(self, threads: int = 0) -> int:
        """How many runs of ``threads`` torch threads can run at once (1 for ``local``)."""
        return 1

    def describe(self) -> str:
        return self.kind


class LocalExecutor(Executor):
    """Every job in the calling process, one after another (the default; what torchrun/DDP uses)."""

    kind = "local"

    def run(self, fn: Callable[..., Any], jobs: Iterable[Job], threads: int = 0) -> Iterator[tuple[Hashable, Any]]:
        for key, args in jobs:
            with torch_threads(threads):
                result = fn(*args)
            yield key, result


def get_executor(spec: str | Executor | None = None, *, cpus_per_run: int = 0, source: str = "--executor",
                 log: Callable[[str], None] | None = None) -> Executor:
    """An executor from a name (``local``, ``ray``), an instance (returned as it is), or None
    (``$CITYSEG_EXECUTOR``, else local). ``cpus_per_run``: CPUs each Ray run holds on a cluster
    without GPUs (0: its torch thread count). Creating a Ray executor does not start Ray yet."""
    if isinstance(spec, Executor):
        return spec
    name = executor_name(spec, source)
    if name == "local":
        return LocalExecutor()
    from cityseg_lib.execute.ray_executor import RayExecutor

    return RayExecutor(cpus_per_run=cpus_per_run, log=log)
