"""What a notebook and the report take from a sweep: run it or read it, Table 2, the tuned config."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig, train_config
from cityseg_lib.strict import config_to_dict, load_yaml

__all__ = ["run_sweep_or_load", "sweep_results", "table2_frame", "tuned_config"]


def run_sweep_or_load(params_file: str | os.PathLike, overrides: dict | None = None, retrain: bool = False,
                      verbose: bool = True) -> Path:
    """Run (or resume, or just read) the halving sweep of ``params_file``; returns its folder.

    The folder is named by what the sweep computes (see :func:`cityseg_lib.sweep.sweep_dir_for`),
    so edited params make a new sweep beside the old one. ``retrain`` (an explicit request)
    first moves this sweep's folder to ``.replaced/`` beside it and says where; nothing deletes a sweep.
    """
    from cityseg_lib import sweep
    from cityseg_lib.files import set_aside
    from cityseg_lib.lock import folder_lock

    cfg = sweep.load_sweep_config(params_file, overrides)
    folder = sweep.sweep_dir_for(cfg)
    log = print if verbose else (lambda _msg: None)
    if retrain and folder.exists():
        with folder_lock(folder, "sweep"):  # refused while another process runs this sweep
            kept = set_aside(folder)
        log(f"{cfg.name}: retrain requested: the earlier sweep moved to {kept}")
    quiet = (folder / "winner.json").is_file()
    return sweep.run_sweep(cfg, log=(lambda _msg: None) if quiet else log)


def sweep_results(folder: str | os.PathLike) -> dict:
    """What the report needs of a finished sweep: grid, rung plan, trials, Table 2 row, winner."""
    import pandas as pd

    folder = Path(folder)
    cfg = load_yaml(folder / "sweep.yaml")
    plan = json.loads((folder / "plan.json").read_text())
    winner = json.loads((folder / "winner.json").read_text())
    trials = pd.read_csv(folder / "trials.csv")
    rungs = [{"rung": r["index"], "trials": r["candidates"], "kept": r["keep"], "train images": r["subset"],
              "epochs": r["epochs"], "final": bool(r["final"])} for r in plan["rungs"]]
    return {"dir": runstore.relative(folder), "name": cfg.get("name"), "grid": cfg.get("grid", {}), "plan": rungs,
            "trials": int(len(trials)), "n_train": plan["n_train"], "failed": int((trials["status"] == "failed").sum()),
            "table2": winner["table2"], "winner": winner["winner"], "runner_up": winner.get("runner_up"),
            "image_epochs": int(sum(r["candidates"] * r["subset"] * r["epochs"] for r in plan["rungs"])),
            "trial_train_s": float(pd.to_numeric(trials["train_time_s"], errors="coerce").fillna(0).sum())}


def table2_frame(sweeps: dict[str, dict]):
    """Table 2 of the sweeps (``{model: sweep_results(...)}``): the winners' parameters and val loss."""
    import pandas as pd

    return pd.DataFrame([sw["table2"] for sw in sweeps.values()])


def tuned_config(profile: str, name: str, base_run: str | os.PathLike, params: dict) -> TrainConfig:
    """The config of ``base_run`` with the sweep winner's ``params`` (``lr``, ``model_options.dropout``...)."""
    values = config_to_dict(runstore.load_config(base_run))
    options = dict(values.get("model_options") or {})
    for key, value in params.items():
        if key.startswith("model_options."):
            options[key.removeprefix("model_options.")] = value
        else:
            values[key] = value
    values["model_options"] = options
    return train_config(profile, name, **{k: v for k, v in values.items() if k not in ("profile", "name")})
