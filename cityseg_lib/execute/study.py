"""``train_all``: hand every run of a notebook (or of the whole study) to the executor at once."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from pathlib import Path

from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.execute.executors import Executor, get_executor

__all__ = ["train_all", "train_one"]


def train_one(cfg: TrainConfig, retrain: bool = False, capture: bool = False) -> str:
    """One run through the run store (:func:`runstore.train_or_load`), as an executor job.

    ``capture``: return what the run store prints ("NAME: trained 10 epochs ...") instead of
    printing it, so a Ray worker's lines reach the caller's output unprefixed, in order of completion.
    ``retrain`` is for a call made once (here, in this process): a job that an executor may retry
    must not retrain, or each retry would move the run aside again; :func:`train_all` retrains
    before it submits.
    """
    if not capture:
        runstore.train_or_load(cfg, retrain=retrain, note=False)  # train_all said it before submitting
        return ""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runstore.train_or_load(cfg, retrain=retrain, note=False)
    return out.getvalue()


def train_all(cfgs: Iterable[TrainConfig], executor: str | Executor | None = None, retrain: bool = False,
              threads: int = 0) -> list[Path]:
    """The finished run folder of every config, in the order given: reused, or trained on ``executor``.

    ``executor``: ``"local"``, ``"ray"``, an :class:`Executor`, or None for ``$CITYSEG_EXECUTOR``
    (else local). Finished runs are reused here without starting the executor (so a rebuild whose
    runs all exist never starts Ray); the others are submitted together and trained concurrently
    as far as the executor has room. Configs that name the same run (the same folder) train once.
    ``retrain`` replaces finished runs (and says so). ``threads``: torch threads of every run
    (0: this process's count, e.g. a notebook's ``set_cpu_threads``), so results do not depend on
    the executor. A :class:`CitysegError` in any run stops the others and is raised here.

    The replacing is done here, once per run, before any job starts: a job is retried with its
    own arguments when its Ray worker dies, and the retry must resume the run the first attempt
    began, not move it aside and start over.
    """
    cfgs = list(cfgs)
    folders = [runstore.run_dir(cfg) for cfg in cfgs]
    todo: dict[Path, TrainConfig] = {}
    for cfg, folder in zip(cfgs, folders):
        if folder in todo:
            continue
        if not retrain and runstore.is_finished(folder, cfg):
            runstore.train_or_load(cfg)  # says "reusing", points config.yaml at the data's current place
        else:
            todo[folder] = cfg
    if retrain:
        for cfg in todo.values():
            runstore.prepare(cfg, resume=True, retrain=True, new_ok=True)  # the run moves to .replaced/, said so
    for folder, cfg in todo.items():  # a new run beside others of its name says why, before any training
        if not (folder / "config.yaml").is_file() and (line := runstore.earlier_runs_note(cfg, folder)):
            print(line)
    if todo:
        ex = get_executor(executor, log=print)
        remote = ex.kind != "local"
        jobs = [(folder, (cfg, False, remote)) for folder, cfg in todo.items()]
        for _folder, text in ex.run(train_one, jobs, threads):
            if text:
                print(text, end="", flush=True)
    return folders
