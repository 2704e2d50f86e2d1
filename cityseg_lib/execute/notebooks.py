"""Running the study's notebooks side by side when the executor has room (``cityseg report --executor ray``).

Notebooks 02-06 hand their runs to the executor; with Ray, one cluster serves all of them, so
independent notebooks can run at once and their runs share the cluster's GPUs instead of queueing
behind one another. Notebook 05 reads 03's result and 06 reads 03's and 04's, so they wait for
those (:data:`DEPENDS`); 01 (data) and 07 (the report) run alone, as before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

__all__ = ["DEPENDS", "CONCURRENT", "waves", "in_threads", "shared_cluster"]

#: notebook -> the notebooks whose results it reads
DEPENDS = {"05_loss_comparison": ("03_unet",), "06_halving_sweep": ("03_unet", "04_swin2_jnet")}
#: the notebooks that train (and may run beside each other)
CONCURRENT = ("02_baseline_fcn", "03_unet", "04_swin2_jnet", "05_loss_comparison", "06_halving_sweep")


def waves(stems: Sequence[str], parallel: bool) -> list[list[str]]:
    """``stems`` (in study order) as groups that may run at once: a training notebook joins the
    current group unless it reads the result of a notebook in it; others run alone."""
    out: list[list[str]] = []
    for stem in stems:
        current = out[-1] if out else []
        joins = (parallel and stem in CONCURRENT and current and all(s in CONCURRENT for s in current)
                 and not set(DEPENDS.get(stem, ())) & set(current))
        if joins:
            current.append(stem)
        else:
            out.append([stem])
    return out


def in_threads(jobs: Sequence[tuple[str, Callable[..., Any], tuple]],
               stop: Callable[[], None] | None = None) -> Iterator[tuple[str, Any]]:
    """Run ``(key, fn, args)`` jobs in threads; yield ``(key, result)`` as each ends. A failure is
    raised once the others have ended (a notebook cannot be stopped half-way cleanly). On Ctrl-C or
    SIGTERM (in this thread, the main one) ``stop()`` is called first, to end the jobs (the notebooks'
    kernels, which the signal does not reach), and the interrupt is raised once the threads end."""
    if len(jobs) == 1:
        key, fn, args = jobs[0]
        yield key, fn(*args)
        return
    errors = []
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {pool.submit(fn, *args): key for key, fn, args in jobs}
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as err:  # noqa: BLE001 - re-raised below, after the others
                    errors.append(err)
                    continue
                yield futures[future], result
        except BaseException:  # an interrupt, or the caller's (GeneratorExit): leaving the block waits for the threads
            if stop is not None:
                stop()
            raise
    if errors:
        raise errors[0]


@contextlib.contextmanager
def shared_cluster(kind: str, log: Callable[[str], None] = print) -> Iterator[bool]:
    """With ``ray``: start (or join) the cluster here and let the notebooks' kernels join it
    (``$RAY_ADDRESS``); yields whether it has room for more than one run. ``local``: False.

    An embedded cluster that does not start (Ray's raylet gives up on a machine too busy to
    start its agent in time) does not stop the build: it says so in one line and the notebooks
    train with the local executor, whose results are the same. A cluster named by
    ``$RAY_ADDRESS`` that cannot be reached is an error (the user asked for that cluster)."""
    if kind != "ray":
        yield False
        return
    from cityseg_lib.errors import CitysegError
    from cityseg_lib.execute.executors import ENV_VAR
    from cityseg_lib.execute.ray_executor import RayExecutor

    executor = RayExecutor(log=log)
    try:
        room = executor.capacity() > 1
    except CitysegError as err:
        if os.environ.get("RAY_ADDRESS", "").strip():
            raise
        log(f"{err}; the notebooks train with the local executor instead (one run after another, same results)")
        chosen = os.environ.get(ENV_VAR)
        os.environ[ENV_VAR] = "local"
        try:
            yield False
        finally:
            if chosen is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = chosen
        return
    before = os.environ.get("RAY_ADDRESS")
    os.environ["RAY_ADDRESS"] = executor.address
    try:
        yield room
    finally:
        if before is None:
            os.environ.pop("RAY_ADDRESS", None)
        else:
            os.environ["RAY_ADDRESS"] = before
