"""Running the study's notebooks side by side when the executor has room (``cityseg report --executor ray``).

Notebooks 02-06 hand their runs to the executor; with Ray, one cluster serves all of them, so
independent notebooks can run at once and their runs share the cluster's GPUs instead of queueing
behind one another. Notebook 05 reads 03's result and 06 reads 03's and 04's, so each starts as soon
as those have ended (:data:`DEPENDS`, :func:`in_dependency_order`); 01 (data) and 07 (the report) run alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

__all__ = ["DEPENDS", "CONCURRENT", "ready", "in_dependency_order", "shared_cluster"]

#: notebook -> the notebooks whose results it reads
DEPENDS = {"05_loss_comparison": ("03_unet",), "06_halving_sweep": ("03_unet", "04_swin2_jnet")}
#: the notebooks that train (and may run beside each other)
CONCURRENT = ("02_baseline_fcn", "03_unet", "04_swin2_jnet", "05_loss_comparison", "06_halving_sweep")


def ready(stem: str, stems: Sequence[str], done: Collection[str], parallel: bool) -> bool:
    """Whether ``stem`` may start once the notebooks in ``done`` have ended. A training notebook
    (:data:`CONCURRENT`) waits for the notebooks it reads (:data:`DEPENDS`, where they run in this
    build) and for every earlier one that does not train (01); any other notebook (01, 07), or every
    one without ``parallel``, waits for all before it in ``stems`` (study order)."""
    earlier = stems[: list(stems).index(stem)]
    if parallel and stem in CONCURRENT:
        earlier = [s for s in earlier if s not in CONCURRENT or s in DEPENDS.get(stem, ())]
    return all(s in done for s in earlier)


def in_dependency_order(stems: Sequence[str], job: Callable[[str], Any], parallel: bool,
                        started: Callable[[str], None] | None = None,
                        stop: Callable[[], None] | None = None) -> Iterator[tuple[str, Any]]:
    """Run ``job(stem)`` for every stem, each as soon as it is :func:`ready` (``started(stem)`` says
    so); yield ``(stem, result)`` as each ends. So 05 starts when 03 has ended and 06 when 03 and 04
    have, instead of when all of 02-04 have: a core that the last runs of 02 leave idle trains 05's.
    A notebook that runs alone (01, 07, or any without ``parallel``) runs in this thread. After a
    failure nothing new starts; it is raised once the running ones have ended (a notebook cannot be
    stopped half-way cleanly). On Ctrl-C or SIGTERM (in this thread, the main one) ``stop()`` is
    called first, to end the running notebooks' kernels, which the signal does not reach."""
    stems, done, errors = list(stems), set(), []
    pending, running = list(stems), {}
    with ThreadPoolExecutor(max_workers=max(1, len(stems))) as pool:
        try:
            while pending and not errors or running:
                now = [s for s in pending if ready(s, stems, done, parallel)] if not errors else []
                if len(now) == 1 and not running and not (parallel and now[0] in CONCURRENT):
                    pending.remove(now[0])
                    if started is not None:
                        started(now[0])
                    result = job(now[0])
                    done.add(now[0])
                    yield now[0], result
                    continue
                for stem in now:
                    pending.remove(stem)
                    if started is not None:
                        started(stem)
                    running[pool.submit(job, stem)] = stem
                for future in wait(running, return_when=FIRST_COMPLETED).done:
                    stem = running.pop(future)
                    try:
                        result = future.result()
                    except Exception as err:  # noqa: BLE001 - re-raised below, after the others
                        errors.append(err)
                        continue
                    done.add(stem)
                    yield stem, result
        except BaseException:  # an interrupt, or the caller's (GeneratorExit): leaving the block waits for the threads
            if stop is not None and running:
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
