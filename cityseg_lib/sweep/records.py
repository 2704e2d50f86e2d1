"""The sweep folder's files: ``trials.csv``, ``sweep.yaml``/``plan.json`` checks, Table 2 and the winner."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from cityseg_lib import runstore
from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write_text, json_safe
from cityseg_lib.strict import config_to_dict, load_yaml
from cityseg_lib.sweep.config import VOLATILE_SWEEP, SweepConfig
from cityseg_lib.sweep.halving import rank_key
from cityseg_lib.sweep.trials import TRIAL_FIELDS, failed_result, params_text, table2_row

if TYPE_CHECKING:  # the sweep's state (sweep/run.py imports this module)
    from cityseg_lib.sweep.run import _Sweep

__all__ = ["trial_columns", "write_trials", "failed_rows", "check_same_sweep", "write_results", "read_trials"]


def trial_columns(grid_keys: list[str]) -> list[str]:
    return ["rung", "candidate", *grid_keys, *TRIAL_FIELDS, "decision", "run_dir", "error"]


def write_trials(path: Path, rows: dict[tuple[int, int], dict], grid_keys: list[str]) -> None:
    """All trials so far, sorted by (rung, candidate): the file does not depend on finishing order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=trial_columns(grid_keys), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[k] for k in sorted(rows))
    atomic_write_text(path, buf.getvalue())


#: Failures an older version recorded that were the settings' fault (a device the machine lacks, a
#: resume with other settings, a dataset a Ray worker did not find), which now stop the sweep
#: instead: their trials are run again.
_SETTINGS_FAILURE = re.compile(r"device '[^']*' (requested but|is not a torch device)"
                               r"|.*: cannot resume (with \d+ torch threads|on \d+ process)"
                               r"|dataset root .* does not exist|missing split folder ")


def failed_rows(path: Path) -> dict[tuple[int, str], dict]:
    """Failed trials recorded by an earlier run of the sweep, by (rung, candidate id); kept (not run
    again) except a failure of the settings (:data:`_SETTINGS_FAILURE`)."""
    if not path.is_file():
        return {}
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("status") == "failed" and not _SETTINGS_FAILURE.match(row.get("error") or ""):
                out[(int(row["rung"]), row["candidate"])] = failed_result(int(row["subset"]), row["error"])
    return out


def check_same_sweep(cfg: SweepConfig, folder: Path, n_train: int) -> None:
    """A sweep folder belongs to one config and dataset: refuse to mix results of two."""
    saved_path, plan_path = folder / "sweep.yaml", folder / "plan.json"
    if saved_path.is_file():
        saved, now = load_yaml(saved_path), config_to_dict(cfg)
        keys = [k for k in now if k not in VOLATILE_SWEEP and k != "base"]
        for key in keys:
            if saved.get(key) != now[key]:
                raise CitysegError(f"{saved_path}: cannot resume: {key} was {saved.get(key)!r} in that sweep, "
                                   f"now {now[key]!r} (choose another name=)")
        old_base, new_base = saved.get("base") or {}, now["base"]
        for key in sorted(set(old_base) | set(new_base)):
            if key not in runstore.EXECUTION_KEYS and old_base.get(key) != new_base.get(key):
                raise CitysegError(f"{saved_path}: cannot resume: base.{key} was {old_base.get(key)!r} in that "
                                   f"sweep, now {new_base.get(key)!r} (choose another name=)")
    if plan_path.is_file():
        old_n = runstore.read_json(plan_path, "restore it, or delete it (it is written again)").get("n_train")
        if old_n != n_train:
            raise CitysegError(f"{plan_path}: cannot resume: the training split had {old_n} images, now {n_train}")


def write_results(sweep: _Sweep) -> None:
    """``table2.csv``, ``winner.json`` and ``brackets.png`` from the finished trials."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's (notebook's) backend alone

    rows, out = sweep.rows, sweep.out
    final = sweep.plan[-1].index
    finals = sorted((k for k in rows if k[0] == final), key=lambda k: rank_key(k[1], rows[k]["best_val_loss"]))
    win_key = finals[0]
    row = table2_row(sweep.configs[win_key], rows[win_key]["best_val_loss"])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(row), lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    atomic_write_text(out / "table2.csv", buf.getvalue())

    def finite(key) -> bool:
        return rank_key(key[1], rows[key]["best_val_loss"])[0] == 0

    def entry(key):
        r = rows[key]
        return {"candidate": r["candidate"], "params": sweep.candidates[key[1]].params,
                "best_val_loss": r["best_val_loss"], "best_epoch": r["best_epoch"], "val_miou": r["val_miou"],
                "run_dir": r["run_dir"]}

    winner = {
        "sweep": sweep.cfg.name, "profile": sweep.cfg.profile, "model": sweep.configs[win_key].model,
        "n_candidates": len(sweep.candidates), "rungs": len(sweep.plan), "n_train": sweep.n_train,
        "winner": entry(win_key), "runner_up": entry(finals[1]) if len(finals) > 1 and finite(finals[1]) else None,
        "table2": row,
    }
    atomic_write_text(out / "winner.json", json.dumps(json_safe(winner), indent=2, allow_nan=False))

    fig = Figure(figsize=(7, 4.5))
    from cityseg_lib.plots import brackets_panel

    brackets_panel(fig.subplots(), read_trials(out))
    fig.tight_layout()
    tmp = out / ".brackets.tmp.png"
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, out / "brackets.png")
    sweep.log(f"winner {rows[win_key]['candidate']} [{params_text(sweep.candidates[win_key[1]].params)}]: "
              f"val loss {rows[win_key]['best_val_loss']:.4f} -> {out / 'table2.csv'}")


def read_trials(sweep: str | os.PathLike):
    """``trials.csv`` of a sweep folder (or the file itself) as a pandas DataFrame."""
    import pandas as pd

    path = Path(sweep)
    path = path / "trials.csv" if path.is_dir() else path
    if not path.is_file():
        raise CitysegError(f"{path}: no trials.csv (has the sweep run?)")
    return pd.read_csv(path)
