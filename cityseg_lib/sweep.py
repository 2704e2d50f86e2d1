"""Halving hyperparameter sweep over training-set size, resumable (reference report, Section 3.5).

Successive halving: rung 0 trains every configuration of the grid for ``rung_epochs`` epochs on
a random subset of the training set; the half with the highest best-validation-loss is dropped
(``ceil(n/2)`` survive), the subset doubles, and so on until two candidates remain. Those two
are trained on the whole training set (for ``final_epochs``) and the lower validation loss wins.
With the 36 configurations of Table 1 the rungs hold 36, 18, 9, 5, 3 and 2 candidates, so rung 0
sees 1/32 of the data (rung ``r`` of ``R`` halvings sees ``N / 2**(R - r)`` images, never fewer
than ``min_subset``). Subsets are nested (one seeded permutation, see
:func:`cityseg_lib.dataset.subset_indices`) and every trial is scored on the same, whole
validation split, so the losses of a rung are comparable.

Layout of a sweep folder ``RUNS/PROFILE/NAME/``::

    sweep.yaml        resolved sweep config (a later run must agree with it)
    plan.json         training-set size, rungs and candidates
    plan.txt          the rung plan as printed by ``--dry-run``
    trials.csv        one row per trial, rewritten atomically after every finished trial
    table2.csv        the winner as a row of the report's Table 2
    winner.json       the winner, runner-up and their scores
    brackets.png      val loss of every candidate across rungs
    trials/rR_cII/    one ordinary training run per trial (see :func:`cityseg_lib.engine.fit`)

Resuming: every trial is an ordinary run trained with ``fit(resume=True)``, which returns at
once when its ``summary.json`` exists and continues an interrupted run from ``last.pt``. The
sweep keeps no other state: on every start it walks the rungs again, takes finished trials from
their ``summary.json`` (and failed ones from ``trials.csv``), and re-derives the halving
decisions from those losses -- so a sweep killed at any moment and started again ends with the
same tables as an uninterrupted one.

A trial whose training raises :class:`CitysegError` (a non-finite loss, for instance) is
recorded as ``failed`` with val loss ``inf``, ranks last, and the sweep goes on; it is not
retried on resume (delete ``trials.csv`` to retry failed trials -- finished ones are kept in
their run folders). If every trial of a rung fails the sweep stops, since a winner would be
meaningless. Other exceptions are bugs or hardware trouble and stop the sweep.

Parallel trials: the trials of a rung are independent. With one device they run one after
another in this process; with ``devices: [cuda:0, cuda:1, ...]`` (or ``[auto]`` on a machine
with several GPUs) one spawned worker per device pulls trials from a queue. The records are
sorted by (rung, candidate), and every worker uses the same torch thread count, so the tables do
not depend on the number of workers or the order in which trials finish.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import math
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from .checkpoint import atomic_write_text
from .config import TrainConfig, config_to_dict, from_dict, load_yaml, parse_overrides
from .errors import CitysegError

__all__ = [
    "TABLE1_GRID",
    "MODEL_NAMES",
    "SweepConfig",
    "Candidate",
    "Rung",
    "load_sweep_config",
    "grid_candidates",
    "plan_rungs",
    "select_survivors",
    "format_plan",
    "count_train_images",
    "sweep_dir_for",
    "trial_config",
    "run_trial",
    "resolve_devices",
    "run_sweep",
    "read_trials",
    "plot_brackets",
    "table2_row",
]

#: Table 1 of the reference report: 2 x 3 x 2 x 3 = 36 configurations.
TABLE1_GRID: dict[str, list] = {
    "lr": [1e-3, 1e-4],
    "gamma": [1.0, math.sqrt(0.1), 0.1],
    "weight_decay": [0.0, 1e-4],
    "model_options.dropout": [0.0, 0.05, 0.1],
}

#: Display names of the models in Table 2.
MODEL_NAMES = {"simple_fcn": "Simple FCN", "unet": "UNet", "swin2_jnet": "Swin2-JNet"}

#: TrainConfig keys the sweep sets on every trial; ``base`` and ``grid`` may not set them.
SWEEP_OWNED = ("name", "profile", "runs_dir", "epochs", "train_subset", "subset_seed", "device")

#: ``base`` keys that may differ when a sweep is resumed (they do not change what is computed).
_VOLATILE_BASE = {"data_root", "cache_dir", "num_workers", "progress", "compile"}
#: Sweep keys that may differ when a sweep is resumed.
_VOLATILE_SWEEP = {"devices", "runs_dir", "cpu_threads"}

_MODEL_OPTION = "model_options."
_TRIAL_FIELDS = ["subset", "epochs", "status", "best_val_loss", "best_epoch", "val_miou",
                 "train_time_s", "wall_time_s"]


@dataclass
class SweepConfig:
    """A halving sweep: fixed training settings, the grid, and how the rungs are run."""

    name: str = "sweep"  # sweep folder: RUNS_DIR/PROFILE/NAME
    profile: str = "demo"  # params profile (demo, full, smoke)
    runs_dir: str = ""  # "" -> PROJECT/runs
    base: dict = field(default_factory=dict)  # TrainConfig keys fixed for every trial
    # grid: TrainConfig key (or model_options.KEY) -> values; default = Table 1 of the report
    grid: dict = field(default_factory=lambda: {k: list(v) for k, v in TABLE1_GRID.items()})
    rung_epochs: int = 20  # epochs of every trial before the final rung (the report uses 20)
    final_epochs: int = 0  # epochs of the final two on the whole training set; 0 = rung_epochs
    min_subset: int = 1  # fewest training images of a rung
    subset_seed: int = 0  # seed of the nested subsets (the trials' weight seed is base.seed)
    devices: list[str] = field(default_factory=lambda: ["auto"])  # one worker each; auto = every GPU, else cpu
    cpu_threads: int = 0  # torch threads of every trial; 0 = torch's default (CPU results depend on it)


@dataclass(frozen=True)
class Candidate:
    """One configuration of the grid: ``index`` in grid order, ``id`` like ``c07``."""

    index: int
    id: str
    params: dict


@dataclass(frozen=True)
class Rung:
    """One round of training: ``candidates`` trials on ``subset`` images for ``epochs`` epochs,
    of which ``keep`` go on (``final``: the last rung, on the whole training set, keep = 1)."""

    index: int
    candidates: int
    keep: int
    subset: int
    fraction: float
    epochs: int
    final: bool

    @property
    def image_epochs(self) -> int:
        """Training cost of the rung: images seen by all its trials together."""
        return self.candidates * self.subset * self.epochs


# ----------------------------------------------------------------------------- config


def _check_sweep(cfg: SweepConfig, source: str) -> SweepConfig:
    """Validate ``cfg`` (strictly, like TrainConfig) and return it with typed grid values."""
    for key, low in (("rung_epochs", 1), ("final_epochs", 0), ("min_subset", 1), ("cpu_threads", 0)):
        if getattr(cfg, key) < low:
            raise CitysegError(f"{source}: {key} must be >= {low}, got {getattr(cfg, key)}")
    if not cfg.devices:
        raise CitysegError(f"{source}: devices is empty (use [auto], [cpu] or [cuda:0, cuda:1, ...])")
    if "auto" in cfg.devices and len(cfg.devices) > 1:
        raise CitysegError(f"{source}: devices: 'auto' must be alone, got {cfg.devices}")
    if not cfg.name or cfg.name.startswith("/") or ".." in Path(cfg.name).parts:
        raise CitysegError(f"{source}: name {cfg.name!r} must be a plain folder name")

    owned = [k for k in cfg.base if k in SWEEP_OWNED]
    if owned:
        raise CitysegError(f"{source}: base.{owned[0]} is set by the sweep for every trial "
                           "(use name, profile, runs_dir, rung_epochs, final_epochs, min_subset, subset_seed, devices)")
    from_dict(TrainConfig, cfg.base, source=f"{source}: base")  # unknown keys / wrong types name the key

    if not isinstance(cfg.grid, dict) or not cfg.grid:
        raise CitysegError(f"{source}: grid is empty; give at least one key with a list of values")
    grid = {}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    base_options = cfg.base.get("model_options", {}) or {}
    for key, values in cfg.grid.items():
        where = f"{source}: grid.{key}"
        if not isinstance(values, list) or not values:
            raise CitysegError(f"{where}: expected a non-empty list of values, got {values!r}")
        if key.startswith(_MODEL_OPTION):
            option = key[len(_MODEL_OPTION):]
            if not option:
                raise CitysegError(f"{where}: name the option, e.g. model_options.dropout")
            if option in base_options:
                raise CitysegError(f"{where}: also fixed in base.model_options; set it in one place")
            grid[key] = list(values)
            continue
        if key not in fields or key == "model_options":
            raise CitysegError(f"{where}: not a training key (use a TrainConfig key or model_options.KEY)")
        if key in SWEEP_OWNED:
            raise CitysegError(f"{where}: {key} is set by the sweep and cannot be swept")
        if key in cfg.base:
            raise CitysegError(f"{where}: also fixed in base; set it in one place")
        grid[key] = [getattr(from_dict(TrainConfig, {key: v}, source=where), key) for v in values]
    return dataclasses.replace(cfg, grid=grid)


def _merge(cfg: SweepConfig, values: dict, source: str) -> SweepConfig:
    """``values`` over ``cfg``; ``base.KEY`` / ``grid.KEY`` update one entry of those mappings."""
    plain, nested = {}, {"base": dict(cfg.base), "grid": dict(cfg.grid)}
    touched = set()
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if dot and head in nested:
            nested[head][rest] = value
            touched.add(head)
        else:
            plain[key] = value
    plain.update({k: nested[k] for k in touched if k not in plain})
    return from_dict(SweepConfig, plain, source=source, base=cfg)


def load_sweep_config(params: str | os.PathLike | None = None, overrides: list[str] | dict | None = None) -> SweepConfig:
    """Defaults <- ``params`` YAML <- overrides (``key=value``; ``base.KEY=`` / ``grid.KEY=`` set one entry).

    A ``grid`` in the file replaces the default (Table 1) grid as a whole.
    """
    cfg = SweepConfig()
    if params is not None:
        cfg = _check_sweep(_merge(cfg, load_yaml(params), str(params)), str(params))
    if overrides:
        values = overrides if isinstance(overrides, dict) else parse_overrides(list(overrides))
        cfg = _merge(cfg, values, "override")
    return _check_sweep(cfg, "override" if overrides else str(params or "sweep config"))


# ----------------------------------------------------------------------------- planning


def grid_candidates(grid: dict[str, list]) -> list[Candidate]:
    """Every combination of ``grid``, in a stable order (the last key varies fastest).

    Ids are ``c`` plus the zero-padded index (``c00`` .. ``c35``), so they sort like the index.
    """
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    width = max(2, len(str(len(combos) - 1)))
    return [Candidate(i, f"c{i:0{width}d}", dict(zip(keys, combo))) for i, combo in enumerate(combos)]


def plan_rungs(n_candidates: int, n_train: int, min_subset: int = 1, rung_epochs: int = 20,
               final_epochs: int = 0) -> list[Rung]:
    """The rungs of a halving sweep of ``n_candidates`` over ``n_train`` training images.

    Rung sizes are ``n, ceil(n/2), ...`` down to 2 (one rung only when n <= 2); the last rung is
    the final one, on the whole training set. With ``R`` halvings, rung ``r`` trains on
    ``min(n_train, max(min_subset, ceil(n_train / 2**(R - r))))`` images -- 1/32 of the data at
    rung 0 for 36 candidates -- so the subset doubles from rung to rung.
    """
    if n_candidates < 1:
        raise CitysegError("sweep grid has no candidates")
    if n_train < 1:
        raise CitysegError("sweep needs at least one training image")
    sizes = [n_candidates]
    while sizes[-1] > 2:
        sizes.append(math.ceil(sizes[-1] / 2))
    halvings = len(sizes) - 1
    rungs = []
    for r, count in enumerate(sizes):
        final = r == halvings
        subset = n_train if final else min(n_train, max(min_subset, math.ceil(n_train / 2 ** (halvings - r))))
        rungs.append(Rung(
            index=r, candidates=count, keep=1 if final else sizes[r + 1], subset=subset,
            fraction=subset / n_train, epochs=(final_epochs or rung_epochs) if final else rung_epochs, final=final,
        ))
    return rungs


def _rank_key(index: int, loss: float) -> tuple:
    # non-finite losses (failed trials) rank last; ties go to the lower candidate index
    finite = isinstance(loss, (int, float)) and math.isfinite(loss)
    return (0, loss, index) if finite else (1, 0.0, index)


def select_survivors(results: dict[int, float], keep: int) -> list[int]:
    """The ``keep`` candidate indices with the lowest loss, best first.

    ``results`` maps candidate index -> best validation loss. NaN/inf (failed trials) rank last
    and ties are broken by the lower index, so the decision depends on the losses alone.
    """
    ranked = sorted(results, key=lambda i: _rank_key(i, results[i]))
    return ranked[:keep]


def format_plan(plan: list[Rung], n_train: int, title: str = "") -> str:
    """The rung plan as a table, with its cost in image-epochs against training the full grid.

    The full grid means every candidate trained like the final two: all ``n_train`` images for
    the final rung's epochs. Only training images count: every trial also evaluates the whole
    validation split once per epoch, a cost the same for every rung's trials.
    """
    lines = [title] if title else []
    lines.append(f"{plan[0].candidates} candidates, {n_train} training images, {len(plan)} rungs")
    lines.append(f"{'rung':>4}  {'candidates':>10}  {'keep':>4}  {'subset':>7}  {'fraction':>8}  {'epochs':>6}  "
                 f"{'image-epochs':>12}")
    for r in plan:
        frac = "all" if r.subset >= n_train else f"{100 * r.fraction:.1f}%"
        lines.append(f"{r.index:>4}  {r.candidates:>10}  {r.keep:>4}  {r.subset:>7}  {frac:>8}  {r.epochs:>6}  "
                     f"{r.image_epochs:>12,}")
    total = sum(r.image_epochs for r in plan)
    full = plan[0].candidates * n_train * plan[-1].epochs
    lines.append(f"total {total:,} image-epochs = {100 * total / full:.1f}% of the full grid "
                 f"({plan[0].candidates} x {n_train} images x {plan[-1].epochs} epochs = {full:,})")
    return "\n".join(lines)


def _base_train_config(cfg: SweepConfig) -> TrainConfig:
    return from_dict(TrainConfig, cfg.base, source=f"sweep {cfg.name}: base")


def count_train_images(cfg: SweepConfig) -> int:
    """Size of the training split the trials use (file names only: cheap)."""
    from .layout import find_samples
    from .paths import resolve_data_root

    tc = _base_train_config(cfg)
    return len(find_samples(resolve_data_root(tc.data_root), tc.train_split, tc.annotation))


def _runs_root(cfg: SweepConfig) -> Path:
    from .paths import runs_dir

    return (Path(cfg.runs_dir).expanduser() if cfg.runs_dir else runs_dir()).resolve()


def sweep_dir_for(cfg: SweepConfig) -> Path:
    """``RUNS/PROFILE/NAME``: where the sweep's tables and trial runs live."""
    return _runs_root(cfg) / cfg.profile / cfg.name


def trial_config(cfg: SweepConfig, cand: Candidate, rung: Rung, n_train: int) -> TrainConfig:
    """The training config of ``cand`` at ``rung``: base <- candidate <- what the sweep owns.

    Trials skip the full-resolution evaluation unless ``base`` asks for it (the sweep ranks by
    validation loss at the training size). ``device`` is left to the worker that runs it.
    """
    values = {"full_res_eval": False, **cfg.base}
    options = dict(values.get("model_options") or {})
    for key, value in cand.params.items():
        if key.startswith(_MODEL_OPTION):
            options[key[len(_MODEL_OPTION):]] = value
        else:
            values[key] = value
    values.update(
        model_options=options, name=f"{cfg.name}/trials/r{rung.index}_{cand.id}", profile=cfg.profile,
        runs_dir=str(_runs_root(cfg)), epochs=rung.epochs, subset_seed=cfg.subset_seed,
        train_subset=None if rung.subset >= n_train else rung.subset,
    )
    return from_dict(TrainConfig, values, source=f"sweep {cfg.name}: trial r{rung.index}_{cand.id}")


# ----------------------------------------------------------------------------- running trials


def _result_from_summary(path: Path) -> dict:
    s = json.loads(path.read_text())
    return {
        "subset": s["train_images"], "epochs": s["epochs_run"], "status": "ok",
        "best_val_loss": s["best_val_loss"], "best_epoch": s["best_epoch"], "val_miou": s["val"]["miou"],
        "train_time_s": s["train_time_s"], "wall_time_s": s["wall_time_s"], "error": "",
    }


def _failed_result(subset: int, error: str) -> dict:
    return {"subset": subset, "epochs": 0, "status": "failed", "best_val_loss": math.inf, "best_epoch": 0,
            "val_miou": math.nan, "train_time_s": 0.0, "wall_time_s": 0.0, "error": error}


def run_trial(trial_cfg: TrainConfig) -> dict:
    """Train (or resume, or just read) one trial; a :class:`CitysegError` makes it ``failed``."""
    from .engine import fit, run_dir_for

    try:
        out = fit(trial_cfg, resume=True)
    except CitysegError as e:
        subset = trial_cfg.train_subset if isinstance(trial_cfg.train_subset, int) else 0
        return _failed_result(subset, str(e).splitlines()[0] if str(e) else type(e).__name__)
    return _result_from_summary(run_dir_for(trial_cfg) / "summary.json")


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

    ``threads`` is the torch thread count of every trial (see :func:`_trial_threads`).
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


class _Workers:
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


def _trial_threads(cfg: SweepConfig) -> int:
    """Torch threads of every trial: ``cpu_threads``, else this process's count.

    CPU results depend on the thread count (the order of float reductions), and a sweep must not
    depend on how many workers ran it, so every worker uses the same count as an inline run.
    With several CPU workers set ``cpu_threads`` to cores / workers, or they oversubscribe.
    """
    import torch

    return cfg.cpu_threads or torch.get_num_threads()


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run inline trials with ``threads`` torch threads, and give the caller its count back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` so two sweeps never train into the same folder at once."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(folder / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CitysegError(f"{folder}: another sweep is running in this folder") from None
        yield


# ----------------------------------------------------------------------------- records


def _trial_columns(grid_keys: list[str]) -> list[str]:
    return ["rung", "candidate", *grid_keys, *_TRIAL_FIELDS, "decision", "run_dir", "error"]


def _write_trials(path: Path, rows: dict[tuple[int, int], dict], grid_keys: list[str]) -> None:
    """All trials so far, sorted by (rung, candidate): the file does not depend on finishing order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_trial_columns(grid_keys), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[k] for k in sorted(rows))
    atomic_write_text(path, buf.getvalue())


def _failed_rows(path: Path) -> dict[tuple[int, str], dict]:
    """Failed trials recorded by an earlier run of the sweep, by (rung, candidate id)."""
    if not path.is_file():
        return {}
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("status") == "failed":
                out[(int(row["rung"]), row["candidate"])] = _failed_result(int(row["subset"]), row["error"])
    return out


def _check_same_sweep(cfg: SweepConfig, folder: Path, n_train: int) -> None:
    """A sweep folder belongs to one config and dataset: refuse to mix results of two."""
    saved_path, plan_path = folder / "sweep.yaml", folder / "plan.json"
    if saved_path.is_file():
        saved, now = load_yaml(saved_path), config_to_dict(cfg)
        keys = [k for k in now if k not in _VOLATILE_SWEEP and k != "base"]
        for key in keys:
            if saved.get(key) != now[key]:
                raise CitysegError(f"{saved_path}: cannot resume: {key} was {saved.get(key)!r} in that sweep, "
                                   f"now {now[key]!r} (choose another name=)")
        old_base, new_base = saved.get("base") or {}, now["base"]
        for key in sorted(set(old_base) | set(new_base)):
            if key not in _VOLATILE_BASE and old_base.get(key) != new_base.get(key):
                raise CitysegError(f"{saved_path}: cannot resume: base.{key} was {old_base.get(key)!r} in that "
                                   f"sweep, now {new_base.get(key)!r} (choose another name=)")
    if plan_path.is_file():
        old_n = json.loads(plan_path.read_text()).get("n_train")
        if old_n != n_train:
            raise CitysegError(f"{plan_path}: cannot resume: the training split had {old_n} images, now {n_train}")


def _params_text(params: dict) -> str:
    return " ".join(f"{k.removeprefix(_MODEL_OPTION)}={v:.3g}" if isinstance(v, float) else
                    f"{k.removeprefix(_MODEL_OPTION)}={v}" for k, v in params.items())


def table2_row(trial_cfg: TrainConfig, val_loss: float) -> dict:
    """The report's Table 2 row of a trial: model, LR, gamma, L2 (weight decay), dropout, val loss.

    Values come from the trial's resolved config, so settings fixed in ``base`` appear too;
    dropout is None when the model options do not set it (the model's default applies).
    """
    return {
        "model": MODEL_NAMES.get(trial_cfg.model, trial_cfg.model), "lr": trial_cfg.lr, "gamma": trial_cfg.gamma,
        "weight_decay": trial_cfg.weight_decay, "dropout": trial_cfg.model_options.get("dropout"),
        "val_loss": val_loss,
    }


# ----------------------------------------------------------------------------- the sweep


@dataclass
class _Sweep:
    """What the rungs of one sweep share while it runs."""

    cfg: SweepConfig
    candidates: list[Candidate]
    plan: list[Rung]
    n_train: int
    out: Path
    log: Callable[[str], None]
    failed_before: dict  # (rung, candidate id) -> failed result, from an earlier trials.csv
    rows: dict = field(default_factory=dict)  # (rung, candidate index) -> trials.csv row
    configs: dict = field(default_factory=dict)  # (rung, candidate index) -> TrainConfig

    def record(self, key: tuple[int, int], result: dict) -> None:
        """Add a finished trial to ``trials.csv`` (rewritten atomically)."""
        from .engine import run_dir_for

        cand = self.candidates[key[1]]
        self.rows[key] = {
            "rung": key[0], "candidate": cand.id, **cand.params, **{k: result[k] for k in _TRIAL_FIELDS},
            "decision": "", "run_dir": str(run_dir_for(self.configs[key]).relative_to(self.out)),
            "error": result["error"],
        }
        self.save()

    def save(self) -> None:
        _write_trials(self.out / "trials.csv", self.rows, list(self.cfg.grid))


def run_sweep(cfg: SweepConfig, dry_run: bool = False, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) the halving sweep of ``cfg``; returns the sweep folder.

    ``dry_run`` logs the rung plan (see :func:`format_plan`) and trains nothing. Otherwise the
    trials of each rung run on ``cfg.devices``: inline with one device, else one spawned worker
    per device (started once, kept for every rung). ``trials.csv`` is rewritten atomically
    after every finished trial; at the end ``table2.csv``, ``winner.json`` and ``brackets.png``.
    """
    candidates = grid_candidates(cfg.grid)
    n_train = count_train_images(cfg)
    plan = plan_rungs(len(candidates), n_train, cfg.min_subset, cfg.rung_epochs, cfg.final_epochs)
    out = sweep_dir_for(cfg)
    plan_text = format_plan(plan, n_train, title=f"halving sweep {cfg.name!r} (profile {cfg.profile}): {out}")
    if dry_run:
        log(plan_text)
        return out

    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        _check_same_sweep(cfg, out, n_train)
        atomic_write_text(out / "sweep.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        atomic_write_text(out / "plan.json", json.dumps({
            "n_train": n_train, "rungs": [dataclasses.asdict(r) for r in plan],
            "candidates": [{"id": c.id, "params": c.params} for c in candidates],
        }, indent=2))
        atomic_write_text(out / "plan.txt", plan_text + "\n")
        log(plan_text)
        sweep = _Sweep(cfg, candidates, plan, n_train, out, log, _failed_rows(out / "trials.csv"))
        devices, threads = resolve_devices(cfg.devices), _trial_threads(cfg)
        pool: _Workers | None = None
        try:
            alive = [c.index for c in candidates]
            for rung in plan:
                jobs = _pending_trials(sweep, rung, alive)
                if jobs and len(devices) == 1:
                    with _torch_threads(threads):
                        for key, tc in jobs:
                            _finished(sweep, rung, key, run_trial(dataclasses.replace(tc, device=devices[0])))
                elif jobs:
                    pool = pool or _Workers(devices, threads)
                    pool.run(jobs, lambda key, result, rung=rung: _finished(sweep, rung, key, result))
                alive = _decide(sweep, rung, alive)
        except BaseException:
            if pool is not None:
                pool.kill()
            raise
        if pool is not None:
            pool.close()
        _write_results(sweep)
    return out


def _pending_trials(sweep: _Sweep, rung: Rung, alive: list[int]) -> list[tuple[tuple[int, int], TrainConfig]]:
    """Record the trials of ``rung`` that an earlier run finished; return the others."""
    from .engine import run_dir_for

    jobs = []
    for idx in alive:
        key, cand = (rung.index, idx), sweep.candidates[idx]
        sweep.configs[key] = trial_config(sweep.cfg, cand, rung, sweep.n_train)
        summary = run_dir_for(sweep.configs[key]) / "summary.json"
        if summary.is_file():
            sweep.record(key, _result_from_summary(summary))
        elif (rung.index, cand.id) in sweep.failed_before:
            sweep.record(key, sweep.failed_before[(rung.index, cand.id)])
        else:
            jobs.append((key, sweep.configs[key]))
    if len(jobs) < len(alive):
        sweep.log(f"rung {rung.index}: {len(alive) - len(jobs)} of {len(alive)} trials already finished")
    return jobs


def _finished(sweep: _Sweep, rung: Rung, key: tuple[int, int], result: dict) -> None:
    if result["status"] == "failed" and not result["subset"]:
        result = {**result, "subset": rung.subset}
    sweep.record(key, result)
    cand = sweep.candidates[key[1]]
    what = (f"val loss {result['best_val_loss']:.4f}, mIoU {result['val_miou']:.3f}"
            if result["status"] == "ok" else f"FAILED ({result['error']})")
    sweep.log(f"rung {rung.index}/{len(sweep.plan) - 1} {cand.id} [{_params_text(cand.params)}] "
              f"{rung.subset} images: {what} ({result['train_time_s']:.1f} s)")


def _decide(sweep: _Sweep, rung: Rung, alive: list[int]) -> list[int]:
    """Mark the trials of a finished rung kept/dropped (winner/runner-up); returns the survivors."""
    losses = {idx: sweep.rows[(rung.index, idx)]["best_val_loss"] for idx in alive}
    if all(not math.isfinite(v) for v in losses.values()):
        first = sweep.rows[(rung.index, alive[0])]
        raise CitysegError(f"{sweep.out / 'trials.csv'}: every trial of rung {rung.index} failed (first: "
                           f"{first['candidate']}: {first['error']}); fix the cause and delete trials.csv to retry")
    ranked = select_survivors(losses, rung.keep)
    for idx in alive:
        if rung.final:
            decision = "winner" if idx == ranked[0] else "runner-up"
        else:
            decision = "kept" if idx in ranked else "dropped"
        sweep.rows[(rung.index, idx)]["decision"] = decision
    sweep.save()
    return sorted(ranked)


def _write_results(sweep: _Sweep) -> None:
    """``table2.csv``, ``winner.json`` and ``brackets.png`` from the finished trials."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's (notebook's) backend alone

    rows, out = sweep.rows, sweep.out
    final = sweep.plan[-1].index
    finals = sorted((k for k in rows if k[0] == final), key=lambda k: _rank_key(k[1], rows[k]["best_val_loss"]))
    win_key = finals[0]
    row = table2_row(sweep.configs[win_key], rows[win_key]["best_val_loss"])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(row), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    atomic_write_text(out / "table2.csv", buf.getvalue())

    def entry(key):
        r = rows[key]
        return {"candidate": r["candidate"], "params": sweep.candidates[key[1]].params,
                "best_val_loss": r["best_val_loss"], "best_epoch": r["best_epoch"], "val_miou": r["val_miou"],
                "run_dir": r["run_dir"]}

    winner = {
        "sweep": sweep.cfg.name, "profile": sweep.cfg.profile, "model": sweep.configs[win_key].model,
        "n_candidates": len(sweep.candidates), "rungs": len(sweep.plan), "n_train": sweep.n_train,
        "winner": entry(win_key), "runner_up": entry(finals[1]) if len(finals) > 1 else None, "table2": row,
    }
    atomic_write_text(out / "winner.json", json.dumps(winner, indent=2))

    fig = Figure(figsize=(7, 4.5))
    plot_brackets(read_trials(out), ax=fig.subplots())
    fig.tight_layout()
    tmp = out / ".brackets.tmp.png"
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, out / "brackets.png")
    sweep.log(f"winner {rows[win_key]['candidate']} [{_params_text(sweep.candidates[win_key[1]].params)}]: "
              f"val loss {rows[win_key]['best_val_loss']:.4f} -> {out / 'table2.csv'}")


# ----------------------------------------------------------------------------- reading and plotting


def read_trials(sweep: str | os.PathLike):
    """``trials.csv`` of a sweep folder (or the file itself) as a pandas DataFrame."""
    import pandas as pd

    path = Path(sweep)
    path = path / "trials.csv" if path.is_dir() else path
    if not path.is_file():
        raise CitysegError(f"{path}: no trials.csv (has the sweep run?)")
    return pd.read_csv(path)


def plot_brackets(trials, ax=None):
    """Val loss of each candidate across rungs: one line per candidate, the winner highlighted.

    ``trials`` is :func:`read_trials`'s DataFrame (or a sweep folder / trials.csv path). Lines
    end where a candidate was dropped; failed trials (val loss inf) are left out. Returns ``ax``.
    """
    import numpy as np
    from matplotlib import colormaps

    if not hasattr(trials, "columns"):
        trials = read_trials(trials)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4.5))
    ok = trials[np.isfinite(trials["best_val_loss"].astype(float))]
    last_rung = int(trials["rung"].max())
    winner = trials.loc[trials["decision"] == "winner", "candidate"]
    winner = winner.iloc[0] if len(winner) else None
    for cand, g in ok.groupby("candidate", sort=True):
        g = g.sort_values("rung")
        reached = int(g["rung"].max())
        if cand == winner:
            ax.plot(g["rung"], g["best_val_loss"], "o-", color="C3", lw=2.5, zorder=3, label=f"winner {cand}")
        else:
            # colour by the last rung reached (purple: dropped first); stop at 0.75, before viridis turns pale yellow
            shade = colormaps["viridis"](0.75 * reached / max(last_rung, 1))
            ax.plot(g["rung"], g["best_val_loss"], ".-", color=shade, lw=1.2, alpha=0.85)
        if reached == last_rung:
            ax.annotate(cand, (reached, g["best_val_loss"].iloc[-1]), xytext=(4, 0), textcoords="offset points",
                        fontsize=8, va="center")
    subsets = trials.groupby("rung")["subset"].max()
    ax.set_xticks(list(subsets.index), [f"rung {r}\n{n} img" for r, n in subsets.items()])
    ax.set_xlim(-0.3, last_rung + 0.6)
    ax.set_ylabel("best validation loss")
    ax.set_title(f"halving sweep: {trials.loc[trials['rung'] == 0, 'candidate'].nunique()} candidates")
    if winner is not None:
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return ax
