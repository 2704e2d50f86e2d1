"""Where training runs execute: ``local`` (this process, one after another) or ``ray`` (a cluster).

Every training run of the study is independent of the others, except the sweep's rungs (a rung
needs the losses of the one before). So the study hands its runs to an *executor* all at once
and collects their run folders:

* ``local`` (default): in the calling process, one after another -- what the study always did;
* ``ray``: each run is a Ray task holding one GPU, or ``cpus_per_run`` CPUs on a cluster without
  GPUs. ``ray.init()`` starts an embedded single-machine cluster (loopback only, no dashboard,
  token authentication), or joins the cluster named by ``$RAY_ADDRESS`` (``docs/scale-out.md``).

One setting selects it everywhere: ``--executor`` of ``cityseg train / sweep / report``, the
``executor`` key of a sweep's params, and ``$CITYSEG_EXECUTOR`` (what notebooks see; the CLI sets
it for the notebooks it runs). Results do not depend on the executor: a run computes the same
thing wherever it runs, given the same torch thread count, which every executor applies to every
run (:func:`cityseg_lib.execute.executors.Executor.run`).

Faults: a run whose Ray worker dies (killed, out of memory, a lost node) is retried with the
job's own arguments, so jobs always resume (the driver vets the folder and moves a retrained run
aside once, before submitting), and the retry resumes from the run's ``last.pt`` -- exactly on
CPU -- as the run folder's lock (an ``flock``) died with the worker. A :class:`~cityseg_lib.errors.CitysegError` (bad input,
a non-finite loss) is the user's to fix and is not retried.

Nothing here imports Ray until an executor of kind ``ray`` runs something, so the package works
where Ray is not installed (``benchmarks/gpu_check.sh``).
"""

from __future__ import annotations

from cityseg_lib.execute.executors import (ENV_VAR, EXECUTORS, Executor, LocalExecutor, executor_name, get_executor,
                                           torch_threads, use_executor)
from cityseg_lib.execute.study import train_all

__all__ = ["ENV_VAR", "EXECUTORS", "Executor", "LocalExecutor", "executor_name", "get_executor", "torch_threads",
           "use_executor", "train_all"]
