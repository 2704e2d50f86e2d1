"""The ``ray`` executor: every job a Ray task holding one GPU, or ``cpus_per_run`` CPUs without GPUs.

Connecting (:func:`connect`, once per process, on the first job): with ``$RAY_ADDRESS`` set, join
that cluster (``docs/scale-out.md`` starts one); otherwise start an embedded single-machine
cluster, made safe for a shared machine:

* loopback only: Ray picks this machine's network address for its servers, so other machines
  could reach them; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is Ray's switch for a single-node
  cluster on ``127.0.0.1`` (what Ray does on laptops), set before Ray is imported;
* no dashboard (``include_dashboard=False``): nothing serves HTTP;
* token authentication (``RAY_AUTH_MODE=token``, the default of newer Ray, explicit here for
  2.52+): without a token already configured, a random one lives in this process's environment
  (``RAY_AUTH_TOKEN``), which the notebooks it starts inherit, and is never written to disk.

Tasks: ``max_retries`` covers a worker that dies (SIGKILL, out of memory, a lost node): the retry
calls the job again with its own arguments, so every training job resumes (``fit(cfg, True)``
from the CLI, ``train_one`` without ``retrain``, the sweep's ``run_trial``) and the driver vets
the folder, or moves a retrained run aside, once before submitting; the engine then resumes the
run from ``last.pt`` bit for bit on CPU (the run folder's lock died with the worker). ``retry_exceptions=False``: an exception raised by the run
(a :class:`CitysegError` such as a non-finite loss, or a bug) is not retried.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from pathlib import Path
from typing import Any

from cityseg_lib.errors import CitysegError
from cityseg_lib.execute.executors import ENV_VAR, Executor, Job
from cityseg_lib.execute.ray_address import check_ray_address, probe

__all__ = ["RayExecutor", "connect", "MAX_RETRIES", "forwarded_env", "check_ray_address"]

#: Retries of a run whose worker died; each retry resumes from the run's last.pt.
MAX_RETRIES = 3
#: Environment of the driver that every task sees (paths, caches, the offline hub), whatever
#: environment the cluster's workers were started with.
_FORWARD_PREFIXES = ("CITYSEG_", "CITYSCAPES_", "HF_")
_FORWARD_NAMES = ("CI", "TORCH_HOME")
_PATH_VARS = ("CITYSCAPES_DATASET", "CITYSEG_HOME", "CITYSEG_CACHE", "HF_HOME", "HF_HUB_CACHE", "TORCH_HOME")
_LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _ray():
    try:
        import ray
    except ImportError:
        raise CitysegError("executor ray: the ray package is not installed (pip install 'ray>=2.52', or "
                           "pip install -e . which lists it)") from None
    return ray


def _embedded_settings() -> None:
    """Loopback-only servers and token authentication for a cluster this process starts."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    has_token = (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                 or (Path.home() / ".ray" / "auth_token").is_file())
    if os.environ["RAY_AUTH_MODE"] == "token" and not has_token:
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    _loopback()


def _reload_auth() -> None:
    """Make this driver read the token settings again before it starts or joins a cluster.

    Ray reads ``RAY_AUTH_MODE`` when it is imported and caches the first token it loads, for the
    life of the process; the servers it starts are child processes that read the environment as it
    is now. Settings made after ``import ray`` (a notebook that imported it first, a second embedded
    cluster after ``ray.shutdown()``) would reach the GCS but not this driver, which the GCS then
    refuses ("Failed to start GCS" after 20 s).
    """
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # a Ray without token authentication (< 2.52): nothing cached
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _loopback() -> None:
    """Ray's single-node switch: this process's node address is 127.0.0.1, for starting a loopback
    cluster or joining one (otherwise Ray rewrites 127.0.0.1 into the machine's address)."""
    if "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK, "0")
    else:  # imported before we could set the variable: the same switch, on the module Ray reads it from
        import ray._private.ray_constants as ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


def connect(num_cpus: int | None = None) -> str:
    """Join ``$RAY_ADDRESS``, or start the embedded cluster, once per process; returns the GCS address.

    An already-connected process (``ray.init`` called before) keeps its connection. The embedded
    cluster gets three tries: on a machine whose cores are busy the raylet gives up when its agent
    takes more than a fixed 15 s to start (ray-project/ray#65983), and load comes and goes.
    """
    address = check_ray_address()
    if not ("ray" in sys.modules and sys.modules["ray"].is_initialized()):
        if not address:
            _embedded_settings()
        elif address.rsplit(":", 1)[0].strip("[]") in ("127.0.0.1", "localhost", "::1"):
            _loopback()  # a cluster on this machine's loopback (the report's embedded one, a test's)
    ray = _ray()
    if ray.is_initialized():
        return ray.get_runtime_context().gcs_address
    _reload_auth()
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address:
        probe(address)
        try:
            _init(ray, address=address, **quiet)
        except Exception as err:  # refused (token), unreachable, version mismatch: Ray's own words
            raise CitysegError(f"executor ray: cannot join the cluster at RAY_ADDRESS={address}: "
                               f"{_first_line(err)}") from None
        return ray.get_runtime_context().gcs_address
    for attempt in (1, 2, 3):
        before = _children()
        try:
            # no workers started ahead of the first task: at start-up they would compete for the CPU
            # with the agent the raylet is waiting for, and each imports torch on its first task anyway
            _init(ray, include_dashboard=False, num_cpus=num_cpus, **quiet,
                  _system_config={"enable_worker_prestart": False, "prestart_worker_first_driver": False})
            break
        except Exception as err:
            ray.shutdown()
            _end(_children() - before)  # what the failed start left running (ray.shutdown does not know it)
            if attempt < 3 and "timed out" in str(err).lower():
                time.sleep(10 * attempt)  # let the load that starved the agent pass, and try again
                continue
            raise CitysegError(f"executor ray: the embedded Ray cluster did not start ({_first_line(err)}); "
                               "its logs are in /tmp/ray/session_latest/logs") from None
    return ray.get_runtime_context().gcs_address


def _init(ray, **kwargs) -> None:
    """``ray.init``, keeping this process's SIGTERM handler: Ray's own (native) prints a stack dump and
    aborts, where ``cityseg`` stops as after Ctrl-C (one line, exit 143; ``ray.shutdown`` at exit)."""
    import threading

    handler = signal.getsignal(signal.SIGTERM)
    ray.init(**kwargs)
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _children() -> set[int]:
    """Pids of this process's children that are Ray's (Linux /proc; empty elsewhere)."""
    me, out = str(os.getpid()), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if (stat.read_text().rsplit(")", 1)[1].split()[1] == me
                    and b"/ray/" in (stat.parent / "cmdline").read_bytes()):
                out.add(int(stat.parent.name))
        except (OSError, IndexError):
            pass
    return out


def _end(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _forwarded(name: str) -> bool:
    return name.startswith(_FORWARD_PREFIXES) or name in _FORWARD_NAMES


def forwarded_env() -> dict[str, str]:
    """The driver's variables every task gets, relative paths made absolute (a worker's directory
    is its own); inside a run everything is local (no nested Ray)."""
    env = {k: str(Path(v).expanduser().resolve()) if k in _PATH_VARS and v and not Path(v).is_absolute() else v
           for k, v in os.environ.items() if _forwarded(k)}
    env[ENV_VAR] = "local"
    return env


def _absolute(args: tuple) -> tuple:
    """A job's arguments with each TrainConfig's relative paths made absolute (:func:`absolute_paths`)."""
    from cityseg_lib.config import TrainConfig, absolute_paths

    return tuple(absolute_paths(a) if isinstance(a, TrainConfig) else a for a in args)


def _task(fn: Callable[..., Any], args: tuple, threads: int, env: dict[str, str]) -> tuple[Any, str]:
    """Body of every Ray task: the driver's ``env``, ``threads`` torch threads, then the job;
    returns (result, node id). The environment is set here rather than as a Ray ``runtime_env``,
    which would start a separate pool of workers (each importing torch again) for it."""
    import ray
    import torch

    for name in [k for k in os.environ if _forwarded(k) and k not in env]:
        del os.environ[name]
    os.environ.update(env)
    if threads > 0:
        torch.set_num_threads(threads)
    return fn(*args), ray.get_runtime_context().get_node_id()


class RayExecutor(Executor):
    """Jobs as Ray tasks on the embedded cluster or ``$RAY_ADDRESS`` (connected on the first job)."""

    kind = "ray"

    def __init__(self, cpus_per_run: int = 0, num_cpus: int | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        if cpus_per_run < 0:
            raise CitysegError(f"cpus_per_run={cpus_per_run} is out of range (allowed: >= 0; 0 = the run's "
                               "torch threads)")
        check_ray_address()
        self.cpus_per_run, self.num_cpus, self.log, self.address = cpus_per_run, num_cpus, log, ""
        self.nodes_used: set[str] = set()  # node ids that ran a job (for a closing line)

    def _connect(self):
        if not self.address:
            self.address = connect(self.num_cpus)
            if self.log:
                self.log(f"executor ray: {self.describe()}")
        return _ray()

    def _resources(self, threads: int) -> dict:
        """One GPU per run where the cluster has GPUs, else ``cpus_per_run`` (or ``threads``) CPUs."""
        ray = self._connect()
        if ray.cluster_resources().get("GPU", 0) >= 1:
            return {"num_gpus": 1, "num_cpus": self.cpus_per_run or 1}
        cpus = self.cpus_per_run or max(threads, 1)
        largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        if cpus > largest:
            raise CitysegError(f"executor ray: a run needs {cpus} CPUs (cpus_per_run, else its torch threads) but the "
                               f"largest node of the cluster has {largest:g}")
        return {"num_cpus": cpus}

    def capacity(self, threads: int = 0) -> int:
        ray = self._connect()
        total = ray.cluster_resources()
        if total.get("GPU", 0) >= 1:
            return int(total["GPU"])
        return max(1, int(total.get("CPU", 1) // (self.cpus_per_run or max(threads, 1))))

    def describe(self) -> str:
        if not self.address:
            return "ray (not connected yet)"
        total = _ray().cluster_resources()
        return (f"cluster at {self.address}: {len([n for n in _ray().nodes() if n.get('Alive')])} node(s), "
                f"{total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs")

    def run(self, fn: Callable[..., Any], jobs: Iterable[Job], threads: int = 0) -> Iterator[tuple[Hashable, Any]]:
        jobs = list(jobs)
        if not jobs:
            return
        import torch

        threads = threads or torch.get_num_threads()  # the driver's count, as a local run would use
        ray = self._connect()
        remote = ray.remote(_task).options(max_retries=MAX_RETRIES, retry_exceptions=False, **self._resources(threads))
        env = forwarded_env()
        pending = {remote.remote(fn, _absolute(args), threads, env): key for key, args in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                key = pending.pop(done[0])
                result, node = self._get(ray, done[0], key)
                self.nodes_used.add(node)
                yield key, result
        finally:
            for ref in pending:  # an error, or the caller stopped early: nothing keeps training
                ray.cancel(ref, force=True)

    @staticmethod
    def _get(ray, ref, key) -> tuple[Any, str]:
        """The task's value; its CitysegError or OSError naming a file (full disk) as one line; a dead worker or node said so."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, CitysegError):
                raise CitysegError(str(err.cause)) from None
            if isinstance(err.cause, OSError) and err.cause.filename:
                raise err.cause from None
            raise
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.OutOfMemoryError) as err:
            raise RuntimeError(f"job {key!r}: its Ray worker died {MAX_RETRIES + 1} times (last: "
                               f"{_first_line(err)}); run again to resume from last.pt") from None
        except ray.exceptions.LocalRayletDiedError as err:  # the node (its raylet, or an agent it fate-shares with): no retry
            raise CitysegError(f"job {key!r}: the Ray node died ({_first_line(err)}); run the same command again to resume") from None
