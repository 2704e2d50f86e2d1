"""One trial of the sweep: its training config, its folder, running it, and its result row."""

from __future__ import annotations

import math
from pathlib import Path

from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.models.names import display_name
from cityseg_lib.strict import from_dict
from cityseg_lib.sweep.config import MODEL_OPTION, VOLATILE_SWEEP, SweepConfig
from cityseg_lib.sweep.halving import Candidate, Rung

__all__ = ["TRIAL_FIELDS", "count_train_images", "sweep_dir_for", "trial_config", "run_trial", "result_from_summary",
           "failed_result", "table2_row", "params_text", "base_train_config", "sweep_id", "validate_trials"]

TRIAL_FIELDS = ["subset", "epochs", "status", "best_val_loss", "best_epoch", "val_miou", "train_time_s", "wall_time_s"]


def base_train_config(cfg: SweepConfig) -> TrainConfig:
    return from_dict(TrainConfig, cfg.base, source=f"sweep {cfg.name}: base")


def count_train_images(cfg: SweepConfig) -> int:
    """Training images the rungs share (file names only: cheap): the training split, or the pool that
    ``base.train_subset`` draws from it with the sweep's ``subset_seed`` (:data:`.config.BASE_POOL`)."""
    from cityseg_lib.data.dataset import subset_indices
    from cityseg_lib.data.layout import find_samples
    from cityseg_lib.paths import resolve_data_root

    tc = base_train_config(cfg)
    n = len(find_samples(resolve_data_root(tc.data_root), tc.train_split, tc.annotation))
    return len(subset_indices(n, tc.train_subset, cfg.subset_seed)) if tc.train_subset is not None else n


def sweep_id(cfg: SweepConfig) -> str:
    """Eight hex digits of what the sweep computes: its config (less :data:`VOLATILE_SWEEP` and the
    base's execution keys), the dataset's content fingerprint, the trials' model revision and any
    TrainConfig key added since sweeps were first identified (``runstore.ADDED_KEYS``) whose value
    computes something new: a sweep of earlier trials is never resumed with trials of another kind."""
    import hashlib
    import json

    from cityseg_lib.strict import config_to_dict

    values = {k: v for k, v in config_to_dict(cfg).items() if k not in VOLATILE_SWEEP and k != "name"}
    values["base"] = {k: v for k, v in cfg.base.items() if k not in runstore.EXECUTION_KEYS}
    if isinstance(values["base"].get("model_options"), dict):  # a weights file by its content
        values["base"]["model_options"] = runstore.identity.identify_weights(values["base"]["model_options"])
    base = base_train_config(cfg)
    values["dataset"] = runstore.identity.dataset_fingerprint(base)["digest"]
    if revision := runstore.identity.training_revision(base):  # the trials' model computes what it did before
        values["model_revision"] = revision
    for key, earlier in runstore.ADDED_KEYS.items():  # a key added since (its default computes something new)
        if key not in values["base"] and getattr(base, key) != earlier:
            values[key] = getattr(base, key)
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]


def sweep_dir_for(cfg: SweepConfig) -> Path:
    """``RUNS/PROFILE/NAME-HASH``: where the sweep's tables and trial runs live."""
    root = Path(cfg.runs_dir).expanduser() if cfg.runs_dir else runstore.runs_root(TrainConfig())
    return root.resolve() / cfg.profile / f"{cfg.name}-{sweep_id(cfg)}"


def trial_config(cfg: SweepConfig, cand: Candidate, rung: Rung, n_train: int) -> TrainConfig:
    """The training config of ``cand`` at ``rung``: base <- candidate <- what the sweep owns.

    Trials skip the full-resolution evaluation unless ``base`` asks for it (the sweep ranks by
    validation loss at the training size). ``device`` is left to the worker that runs it.
    """
    values = {"full_res_eval": False, **cfg.base}
    options = dict(values.get("model_options") or {})
    for key, value in cand.params.items():
        if key.startswith(MODEL_OPTION):
            options[key[len(MODEL_OPTION):]] = value
        else:
            values[key] = value
    values.update(
        model_options=options, name=f"{sweep_dir_for(cfg).name}/trials/r{rung.index}_{cand.id}", profile=cfg.profile,
        runs_dir=str(sweep_dir_for(cfg).parent.parent), epochs=rung.epochs, subset_seed=cfg.subset_seed,
        train_subset=cfg.base.get("train_subset") if rung.subset >= n_train else rung.subset,  # nested in the pool
    )
    return from_dict(TrainConfig, values, source=f"sweep {cfg.name}: trial r{rung.index}_{cand.id}")


def result_from_summary(run: Path) -> dict:
    """The trials.csv fields of a finished trial run (read through the run store)."""
    s = runstore.load_summary(run)
    return {
        "subset": s["train_images"], "epochs": s["epochs_run"], "status": "ok",
        "best_val_loss": s["best_val_loss"], "best_epoch": s["best_epoch"], "val_miou": s["val"]["miou"],
        "train_time_s": s["train_time_s"], "wall_time_s": s["wall_time_s"], "error": "",
    }


def failed_result(subset: int, error: str) -> dict:
    return {"subset": subset, "epochs": 0, "status": "failed", "best_val_loss": math.inf, "best_epoch": 0,
            "val_miou": math.nan, "train_time_s": 0.0, "wall_time_s": 0.0, "error": error}


def validate_trials(cfg: SweepConfig, candidates: list[Candidate], rung: Rung, n_train: int) -> None:
    """Build the trial config of every candidate (types, ranges) and check its model options
    (names, values, the input size the model trains on and its smallest training batch), and
    ``min_subset`` against the training split, so a ``base`` or grid value that would fail every
    trial fails before the first one, and no folder is made (nor a failed trial recorded) for a
    config that can never run."""
    from cityseg_lib.models import check_model

    if cfg.min_subset > n_train:
        raise CitysegError(f"sweep {cfg.name}: min_subset={cfg.min_subset} is more than the {n_train} images of "
                           "the training split (a rung would train on more than all of it)")
    for cand in candidates:
        tc = trial_config(cfg, cand, rung, n_train)
        try:
            check_model(tc.model, tc.model_options, tc.crop_size or tc.image_size,
                        smallest_batch=runstore.smallest_batch(tc))
        except CitysegError as e:
            swept = any(k.startswith(MODEL_OPTION) or k in ("model", "image_size", "crop_size", "batch_size")
                        for k in cand.params)
            what = f" (trial {cand.id}: {params_text(cand.params)})" if swept else ""
            raise CitysegError(f"sweep {cfg.name}: {e}{what}") from None


def run_trial(trial_cfg: TrainConfig) -> dict:
    """Train (or resume, or just read) one trial; a :class:`CitysegError` makes it ``failed``.

    Except :class:`runstore.ResumeRefused` (a trial begun with another ``cpu_threads``),
    :class:`~cityseg_lib.train.setup.DeviceUnavailable` (``devices`` names a device the worker lacks) and
    :class:`~cityseg_lib.data.layout.DataUnavailable` (the worker does not find the dataset) and
    :class:`~cityseg_lib.models.timm_weights.WeightsUnavailable` (no download, no such file, a file
    that does not load): raised, so the sweep stops with its one line instead of recording, for
    good, a failure of the settings (volatile: a resume with the right ones must train the trial).
    """
    from cityseg_lib.data.layout import DataUnavailable
    from cityseg_lib.models.timm_weights import WeightsUnavailable
    from cityseg_lib.train.engine import fit
    from cityseg_lib.train.setup import DeviceUnavailable

    try:
        fit(trial_cfg, resume=True)
    except (runstore.ResumeRefused, DeviceUnavailable, DataUnavailable, WeightsUnavailable):  # settings' or place's
        raise
    except CitysegError as e:
        subset = trial_cfg.train_subset if isinstance(trial_cfg.train_subset, int) else 0
        return failed_result(subset, str(e).splitlines()[0] if str(e) else type(e).__name__)
    return result_from_summary(runstore.run_dir(trial_cfg))


def params_text(params: dict) -> str:
    return " ".join(f"{k.removeprefix(MODEL_OPTION)}={v:.3g}" if isinstance(v, float) else
                    f"{k.removeprefix(MODEL_OPTION)}={v}" for k, v in params.items())


def table2_row(trial_cfg: TrainConfig, val_loss: float) -> dict:
    """The report's Table 2 row of a trial: model, LR, gamma, L2 (weight decay), dropout, val loss.

    Values come from the trial's resolved config, so settings fixed in ``base`` appear too;
    dropout is None when the model options do not set it (the model's default applies).
    """
    return {
        "model": display_name(trial_cfg.model), "lr": trial_cfg.lr, "gamma": trial_cfg.gamma,
        "weight_decay": trial_cfg.weight_decay, "dropout": trial_cfg.model_options.get("dropout"),
        "val_loss": val_loss,
    }
