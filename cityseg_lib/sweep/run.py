"""The halving sweep's orchestrator: rung by rung, resume from the trials' own folders.

See :mod:`cityseg_lib.sweep` for the method and the folder layout.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.execute import Executor
from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write_text
from cityseg_lib.lock import folder_lock
from cityseg_lib.strict import config_to_dict
from cityseg_lib.sweep.config import SweepConfig
from cityseg_lib.sweep.execution import check_trial_device, sweep_executor, trial_device, trial_threads
from cityseg_lib.sweep.halving import Candidate, Rung, format_plan, grid_candidates, plan_rungs, select_survivors
from cityseg_lib.sweep.records import check_same_sweep, failed_rows, write_results, write_trials
from cityseg_lib.sweep.trials import (TRIAL_FIELDS, count_train_images, params_text, result_from_summary, run_trial,
                                      sweep_dir_for, trial_config, validate_trials)

__all__ = ["run_sweep"]


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
        cand = self.candidates[key[1]]
        self.rows[key] = {
            "rung": key[0], "candidate": cand.id, **cand.params, **{k: result[k] for k in TRIAL_FIELDS},
            "decision": "", "run_dir": str(runstore.run_dir(self.configs[key]).relative_to(self.out)),
            "error": result["error"],
        }
        self.save()

    def save(self) -> None:
        write_trials(self.out / "trials.csv", self.rows, list(self.cfg.grid))


def run_sweep(cfg: SweepConfig, dry_run: bool = False, log: Callable[[str], None] = print,
              executor: str | Executor | None = None) -> Path:
    """Run (or resume) the halving sweep of ``cfg``; returns the sweep folder.

    ``dry_run`` logs the rung plan (see :func:`format_plan`) and trains nothing. Otherwise the
    trials of each rung are submitted together to the executor (``executor``, else the params'
    ``executor``, else ``$CITYSEG_EXECUTOR``, else local; see :func:`sweep_executor`) and the
    rung waits for all of them. ``trials.csv`` is rewritten atomically after every finished
    trial (sorted, so it does not depend on finishing order); at the end ``table2.csv``,
    ``winner.json`` and ``brackets.png``.
    """
    candidates = grid_candidates(cfg.grid)
    n_train = count_train_images(cfg)
    plan = plan_rungs(len(candidates), n_train, cfg.min_subset, cfg.rung_epochs, cfg.final_epochs)
    out = sweep_dir_for(cfg)
    plan_text = format_plan(plan, n_train, title=f"halving sweep {cfg.name!r} (profile {cfg.profile}): {out}")
    validate_trials(cfg, candidates, plan[0], n_train)  # every grid point, before any training
    ex, threads, device = sweep_executor(cfg, executor, log), trial_threads(cfg), trial_device(cfg)
    check_trial_device(cfg, ex)
    if dry_run:
        log(plan_text)
        return out

    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "sweep"):
        check_same_sweep(cfg, out, n_train)
        atomic_write_text(out / "sweep.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        atomic_write_text(out / "plan.json", json.dumps({
            "n_train": n_train, "rungs": [dataclasses.asdict(r) for r in plan],
            "candidates": [{"id": c.id, "params": c.params} for c in candidates],
        }, indent=2))
        atomic_write_text(out / "plan.txt", plan_text + "\n")
        log(plan_text)
        sweep = _Sweep(cfg, candidates, plan, n_train, out, log, failed_rows(out / "trials.csv"))
        alive = [c.index for c in candidates]
        for rung in plan:
            jobs = [(key, (dataclasses.replace(tc, device=device),)) for key, tc in _pending_trials(sweep, rung, alive)]
            # run_trial looked up here at call time (tests replace it); the rung waits for every trial
            for key, result in ex.run(run_trial, jobs, threads):
                _finished(sweep, rung, key, result)
            alive = _decide(sweep, rung, alive)
        if getattr(ex, "nodes_used", None):
            log(f"executor {ex.kind}: trials ran on {len(ex.nodes_used)} node(s)")
        write_results(sweep)
    return out


def _pending_trials(sweep: _Sweep, rung: Rung, alive: list[int]) -> list[tuple[tuple[int, int], TrainConfig]]:
    """Record the trials of ``rung`` that an earlier run finished; return the others (saying when
    new trial runs start beside earlier ones of theirs that compute something else: an upgrade
    that changed the trials' identity)."""
    jobs, notes = [], []
    for idx in alive:
        key, cand = (rung.index, idx), sweep.candidates[idx]
        sweep.configs[key] = trial_config(sweep.cfg, cand, rung, sweep.n_train)
        run = runstore.run_dir(sweep.configs[key])
        if (run / "summary.json").is_file():
            sweep.record(key, result_from_summary(run))
        elif (rung.index, cand.id) in sweep.failed_before:
            sweep.record(key, sweep.failed_before[(rung.index, cand.id)])
        else:
            jobs.append((key, sweep.configs[key]))
            if not (run / "config.yaml").is_file() and (note := runstore.earlier_runs_note(sweep.configs[key], run)):
                notes.append(note)
    if notes:
        sweep.log(f"rung {rung.index}: {len(notes)} trial(s) start beside earlier runs of theirs that are kept; "
                  f"the first: {notes[0]}")
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
    sweep.log(f"rung {rung.index}/{len(sweep.plan) - 1} {cand.id} [{params_text(cand.params)}] "
              f"{rung.subset} images: {what} ({result['train_time_s']:.1f} s)")


def _decide(sweep: _Sweep, rung: Rung, alive: list[int]) -> list[int]:
    """Mark the trials of a finished rung kept/dropped (winner/runner-up); returns the survivors."""
    losses = {idx: sweep.rows[(rung.index, idx)]["best_val_loss"] for idx in alive}
    if all(not math.isfinite(v) for v in losses.values()):
        first = sweep.rows[(rung.index, alive[0])]
        raise CitysegError(f"{sweep.out / 'trials.csv'}: every trial of rung {rung.index} failed (first: "
                           f"{first['candidate']}: {first['error']}); fix the cause and delete trials.csv to retry")
    ranked = select_survivors(losses, len(losses) if rung.final else rung.keep)  # failed trials: none of them
    for idx in alive:
        if rung.final:
            decision = "winner" if idx == ranked[0] else "runner-up" if idx in ranked[1:2] else "dropped"
        else:
            decision = "kept" if idx in ranked else "dropped"
        sweep.rows[(rung.index, idx)]["decision"] = decision
    sweep.save()
    return sorted(ranked[:1] if rung.final else ranked)
