"""Benchmark 4: the GPU report -- each model at the full-profile size and batch on the training path.

    python benchmarks/gpu.py [--models ...] [--size 768 768] [--batch N] [--peak-tflops T] [--reduced] [--plan-only]

For each model (options, size and batch from ``params/full``), the path ``fit`` takes on CUDA
(bf16 autocast, channels_last, and ``torch.compile`` where the full profile trains compiled:
``compile`` in ``params/full/train.yaml``, else TrainConfig's default, off; ``--compile`` forces it,
and ``bench_train.py`` measures what compiling gains) is fed by a real
``DataLoader`` over the preprocessed cache (``$CITYSEG_CACHE``, else ``data/bench/cache``) of
generated 2048x1024 frames (``data/bench/``; or ``--data-root`` for real Cityscapes) with ``fit``'s
settings (shuffled, ``min(cpus, 8)`` workers, pinned memory). Warm-up steps (compilation, cudnn
autotuning, worker start) are excluded. Then:

1. ``steps`` steps as ``fit`` runs them (no host sync between steps, one at the end): images/s,
   achieved TFLOP/s (training FLOPs per image from ``torch.utils.flop_counter``, forward +
   backward, times images/s) and model FLOPs utilisation against the card's dense bf16 peak
   (table below, matched on the device name; ``--peak-tflops`` overrides);
2. ``steps`` more, each timed in two parts: the host waiting in the loader's ``next()``, and copy +
   step up to a ``torch.cuda.synchronize``. With that sync the GPU has nothing queued while the
   host waits, so ``sum(wait) / sum(total)`` is the fraction of step time spent waiting for data
   (an upper bound of what asynchronous execution leaves exposed);
3. evaluation batches (no_grad forward + argmax) for the validation cost, timed on the **eager**
   model (same bf16 autocast and memory format): the compiled one would compile a second time here,
   as Dynamo guards on the module's training flag and on grad mode (tens of seconds per model for
   the full-size models, a minute or more for Swin V2, more than the measurement itself), and
   ``fit`` scores its best checkpoint (the final evaluation) with the eager model anyway. Where
   compilation speeds up the forward pass, the eval rate, and so the validation share of the
   projection, errs on the slow side. ``--eval-compiled`` times the compiled model instead.

Training FLOPs are counted on a copy of the model built on the ``meta`` device (the same shapes, so
the same count; no device time or memory). Peak memory is ``torch.cuda.max_memory_allocated`` over 1 and 2. The projected wall time of the
full-profile study on Cityscapes (2,975 train / 500 val images) counts the runs the notebooks do
in the full profile (02-05, the two halving sweeps planned by ``cityseg_lib.sweep.plan_rungs``,
the tuned winners) and prices each epoch at the measured rates: see :func:`project`.

A FLOP floor is printed too: the study's FLOPs (models counted on the ``meta`` device at the
full-profile settings) over ``--assume-mfu`` of the peak (H100 SXM when the device is not in the
table) -- a GPU-free estimate to compare with the measured projection.

Runs are independent except the sweep's rung barriers, so the study spreads over GPUs (one run
per GPU, ``--executor ray``): both projections are also given on 1, 8 and 32 GPUs, by simulating
that schedule (:mod:`cityseg_lib.execute.plan`) with a lower bound beside it. The plan is every
run the notebooks train, built as they build it (:func:`plan_from_study`); ``--plan-only`` prints
it with the FLOP floor on any machine, measuring nothing.

Without CUDA the script runs in ``--reduced`` mode (256x256, batch 2, small models, few steps,
fp32 eager as ``fit`` on CPU) so every code path but the CUDA calls runs; its numbers are not a
GPU report. Writes ``reports/benchmarks/gpu.json`` (``--out``) first with the FLOP floor, then again
after every model (atomically; ``status`` says which models are done and pending) with the
projection over the models measured so far, and prints each model's table row as it is measured:
a run killed by an outer time limit (``gpu_check.sh``) keeps every finished model.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import re
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from common import (bench_data_root, ensure_demo_data, format_table, peak_cuda_mb, provenance, sync, train_step,
                    training_flops, write_report, RssSampler)

from cityseg_lib.config import TrainConfig
from cityseg_lib.strict import load_yaml
from cityseg_lib.data.dataset import CityscapesSegmentation
from cityseg_lib.train.engine import resolve_device, to_device
from cityseg_lib.train.optimizers import make_optimizer
from cityseg_lib.train.losses import build_loss
from cityseg_lib.models import build_model
from cityseg_lib.paths import source_root

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, matched
# in order against torch.cuda.get_device_name() (so "H100 PCIe" before "H100", "A100" before "A10").
PEAK_BF16_TFLOPS: list[tuple[str, float, str]] = [
    (r"GH200", 989.4, "GH200 (H100-class SXM)"),
    (r"H200 NVL", 835.5, "H200 NVL"),
    (r"H200", 989.4, "H200 SXM"),
    (r"H100 NVL", 835.5, "H100 NVL"),
    (r"H100 PCIe", 756.5, "H100 PCIe"),
    (r"H100", 989.4, "H100 SXM (HBM3)"),
    (r"H800 PCIe", 756.5, "H800 PCIe"),
    (r"H800", 989.4, "H800 SXM"),
    (r"B200", 2250.0, "B200"),
    (r"A100", 312.0, "A100 (SXM and PCIe)"),
    (r"A800", 312.0, "A800"),
    (r"A30\b", 165.0, "A30"),
    (r"A40\b", 149.7, "A40"),
    (r"A10G", 70.0, "A10G (AWS; approximate)"),
    (r"A10\b", 125.0, "A10"),
    (r"L40S", 362.1, "L40S"),
    (r"L40\b", 181.0, "L40"),
    (r"L4\b", 121.0, "L4"),
    (r"RTX 6000 Ada", 364.2, "RTX 6000 Ada"),
    (r"RTX 4090", 165.2, "RTX 4090 (fp32 accumulate)"),
    (r"RTX 3090", 71.0, "RTX 3090 (fp32 accumulate)"),
]

# Cityscapes fine annotations
CITYSCAPES_TRAIN, CITYSCAPES_VAL = 2975, 500

# Models of the full profile when params/full has no model settings: the models' defaults
# (the reference report's), random encoder weights (speed does not depend on them; GPUs are offline).
FULL_OPTIONS = {"simple_fcn": {}, "unet": {}, "swin2_jnet": {"pretrained": False}}
# --reduced (CPU): the small configurations of bench_train.py
REDUCED_OPTIONS = {
    "simple_fcn": {"base_width": 32},
    "unet": {"base_width": 16, "depth": 4},
    "swin2_jnet": {"encoder": "swinv2_tiny_window8_256", "pretrained": False},
}


def peak_tflops_for(name: str) -> tuple[float | None, str]:
    for pattern, tflops, label in PEAK_BF16_TFLOPS:
        if re.search(pattern, name):
            return tflops, label
    return None, "unknown device (pass --peak-tflops)"


# ----------------------------------------------------------------------------- the full profile

#: The notebook whose params/full file holds each model's main run.
MAIN_NOTEBOOK = {"simple_fcn": "02_baseline_fcn", "unet": "03_unet", "swin2_jnet": "04_swin2_jnet"}


def _full_dir() -> Path:
    # the source tree's: $CITYSEG_HOME moves outputs, not params/ (the plan had lost its sweeps there)
    return source_root() / "params" / "full"


def _params(name: str) -> dict | None:
    path = _full_dir() / f"{name}.yaml"
    return load_yaml(path) if path.is_file() else None


def _full_profile_compiles() -> bool:
    """Whether the full profile's runs train compiled (``compile`` in its train.yaml, else the default)."""
    return bool((_params("train") or {}).get("compile", TrainConfig().compile))


def full_profile_settings(model: str) -> dict:
    """Batch size, image size and model options of ``model``'s main run in params/full.

    Falls back on the TrainConfig defaults and the models' defaults when the file is missing.
    Swin2-JNet gets ``pretrained=False``: speed does not depend on the weights (and GPUs are offline).
    """
    defaults = TrainConfig()
    p = _params(MAIN_NOTEBOOK[model])
    if p is None:
        return {"batch_size": defaults.batch_size, "image_size": list(defaults.image_size),
                "model_options": dict(FULL_OPTIONS[model]), "source": "TrainConfig and model defaults (no params/full)"}
    if model == "swin2_jnet":  # the notebook's parameters with params/full over them, as papermill runs it
        from cityseg_lib.report.preflight import notebook_defaults

        with _notebook_tools():
            q = {**notebook_defaults(source_root() / "notebooks" / f"{MAIN_NOTEBOOK[model]}.ipynb"), **p}
        options = {"encoder": q.get("encoder"), "pretrained": False, "dropout": float(q.get("dropout", 0.0)),
                   "batchnorm": q.get("batchnorm")}
        if q.get("encoder_kwargs"):
            options["encoder_kwargs"] = dict(q["encoder_kwargs"])
        options = {k: v for k, v in options.items() if v is not None}
    else:
        options = dict(p.get("model_options") or {})
    return {"batch_size": int(p.get("batch_size", defaults.batch_size)),
            "image_size": list(p.get("image_size", defaults.image_size)), "model_options": options,
            "epochs": int(p.get("epochs", defaults.epochs)), "source": f"params/full/{MAIN_NOTEBOOK[model]}.yaml"}


def _entry(part: str, model: str, runs: int, epochs: int, fraction: float = 1.0, data_factor: float = 1.0,
           full_res: bool = True, chain: str | None = None, stage: int = 0, scale: float = 1.0) -> dict:
    """``runs`` alike runs; ``chain``/``stage``: a sweep's rung (stage ``stage`` waits for the one
    before); ``scale``: cost per image relative to the model's full-profile size (pixels)."""
    return {"part": part, "model": model, "runs": runs, "epochs": epochs, "fraction": fraction,
            "data_factor": data_factor, "full_res_eval": full_res, "chain": chain, "stage": stage, "scale": scale}


def halving_rungs(candidates: int = 36, first_fraction: float = 1 / 32) -> list[tuple[int, float]]:
    """(candidates, data fraction) per rung: halve the candidates (rounding up), double the data, up to all."""
    rungs, n, frac = [], candidates, first_fraction
    while True:
        rungs.append((n, min(frac, 1.0)))
        if frac >= 1.0:
            return rungs
        n, frac = max(1, math.ceil(n / 2)), frac * 2


def default_plan(epochs: int = 20) -> list[dict]:
    """The study's training runs as assumed without params/full: FCN 1 run, U-Net 4, Swin2-JNet 3,
    loss comparison 3 losses x 3 seeds (U-Net), two 36-candidate halving sweeps (U-Net, Swin2-JNet)
    with 20-epoch rungs on 1/32 .. 1/2 of the data then 2 on all, and a tuned run of each winner."""
    plan = [_entry("baseline FCN", "simple_fcn", 1, epochs), _entry("U-Net runs", "unet", 4, epochs),
            _entry("Swin2-JNet runs", "swin2_jnet", 3, epochs),
            _entry("loss comparison 3 x 3 seeds", "unet", 9, epochs)]
    for model in ("unet", "swin2_jnet"):
        rungs = halving_rungs()
        for i, (n, frac) in enumerate(rungs):
            plan.append(_entry(f"sweep {model}: {n} trials", model, n, epochs, frac, full_res=False,
                               chain=f"sweep {model}", stage=i))
        plan.append(_entry(f"sweep {model}: tuned winner", model, 1, epochs, chain=f"sweep {model}", stage=len(rungs)))
    return plan


def plan_from_params(n_train: int = 2975) -> tuple[list[dict], str]:
    """The training runs the notebooks do with params/full (their loops read the same keys), or
    :func:`default_plan` when the folder has no notebook params."""
    if _params("02_baseline_fcn") is None:
        return default_plan(), "assumption (no params/full): see default_plan()"
    from cityseg_lib import sweep
    from cityseg_lib.models.options import batchnorm_option

    shared = _params("train") or {}

    def epochs(p: dict) -> int:  # notebook `train` block <- the profile's shared train.yaml <- 20
        return int((p.get("train") or {}).get("epochs", p.get("epochs", shared.get("epochs", 20))))

    plan = []
    p = _params("02_baseline_fcn")
    plan.append(_entry("02 baseline FCN", "simple_fcn", 1, epochs(p)))
    p = _params("03_unet") or {}
    e = epochs(p)
    plan.append(_entry("03 U-Net + constant-LR run", "unet", 2 if p.get("constant_gamma") is not None else 1, e))
    for mode in p.get("augment_modes", []):
        if mode != "none":  # "augment" doubles the epoch (originals + transformed copies)
            plan.append(_entry(f"03 U-Net augment={mode}", "unet", 1, e, data_factor=2.0 if mode == "augment" else 1.0))
    p = _params("04_swin2_jnet") or {}
    runs = 1 + bool(p.get("compare_dropout")) + bool(p.get("compare_batchnorm") and batchnorm_option("swin2_jnet"))
    plan.append(_entry("04 Swin2-JNet (+ dropout / BatchNorm comparisons)", "swin2_jnet", runs, epochs(p)))
    p = _params("05_loss_comparison") or {}
    plan.append(_entry(f"05 losses {len(p.get('losses', []))} x seeds {len(p.get('seeds', []))}", "unet",
                       len(p.get("losses", [])) * len(p.get("seeds", [])), epochs(p)))
    p6 = _params("06_halving_sweep") or {}
    files = p6.get("sweep_files", {"unet": "sweep_unet.yaml", "swin2_jnet": "sweep_swin2_jnet.yaml"})
    for model, name in files.items():
        if not (_full_dir() / name).is_file():
            continue
        cfg = sweep.load_sweep_config(_full_dir() / name)
        n = len(sweep.grid_candidates(cfg.grid))
        rungs = sweep.plan_rungs(n, n_train, cfg.min_subset, cfg.rung_epochs, cfg.final_epochs)
        for rung in rungs:
            plan.append(_entry(f"06 sweep {model}: rung {rung.index}, {rung.candidates} trials", model, rung.candidates,
                               rung.epochs, rung.subset / n_train, full_res=bool(cfg.base.get("full_res_eval", False)),
                               chain=f"sweep {model}", stage=rung.index))
        if p6.get("train_tuned", True):
            plan.append(_entry(f"06 sweep {model}: tuned winner", model, 1,
                               epochs(_params(MAIN_NOTEBOOK[model]) or {}), chain=f"sweep {model}", stage=len(rungs)))
    return plan, "params/full/*.yaml keys (papermill missing: fallback; 02-05 notebooks, sweep_*.yaml)"


class _Cell(dict):
    """A notebook cell (its JSON) with attribute access, as nbformat gives it."""

    def __getattr__(self, name):
        value = self[name]
        return "".join(value) if name == "source" and isinstance(value, list) else value


@contextlib.contextmanager
def _notebook_tools():
    """Stand-ins for ``nbformat.read`` and ``papermill.inspect_notebook`` while the study's configs
    are built, where those packages are missing (the GPU machine has neither, and the configs only
    need each notebook's JSON and the names in its ``parameters`` cell). Real packages win."""
    import ast
    import importlib.util
    import json
    import types

    def read(path, as_version=4):
        return types.SimpleNamespace(cells=[_Cell(c) for c in json.loads(Path(path).read_text())["cells"]])

    def inspect_notebook(path):
        cell = next(c for c in read(path).cells if "parameters" in c.get("metadata", {}).get("tags", []))
        return {t.id: {} for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}

    added = []
    for name, attrs in (("nbformat", {"read": read}), ("papermill", {"inspect_notebook": inspect_notebook})):
        try:
            missing = importlib.util.find_spec(name) is None or importlib.import_module(name) is None
        except ImportError:
            missing = True
        if missing:
            sys.modules[name] = types.SimpleNamespace(__name__=name, **attrs)
            added.append(name)
    try:
        yield added
    finally:
        for name in added:
            del sys.modules[name]


def _scale(cfg, model: str) -> float:
    """Pixels of ``cfg``'s training size over the model's full-profile size (the measured one)."""
    h0, w0 = full_profile_settings(model)["image_size"]
    return cfg.image_size[0] * cfg.image_size[1] / (h0 * w0)


def plan_from_study(n_train: int = 2975) -> tuple[list[dict], str]:
    """Every run of the full-profile study as the notebooks build it
    (:func:`cityseg_lib.report.preflight.study_configs`: train.yaml, the notebooks' ``train``
    dicts and parameters), each distinct run once (notebook 05 reuses 03's main run), and the two
    halving sweeps rung by rung (their grids from params/full/sweep_*.yaml, their trials' settings
    from the notebook). Without ``$CITYSCAPES_DATASET`` a one-frame generated dataset stands in for
    it (the configs only need a root in the official layout). Where papermill and nbformat are not
    installed (a bare GPU machine) :func:`_notebook_tools` stands in for the two calls the config
    builder makes of them; :func:`plan_from_params` is the last resort."""
    import json
    import tempfile

    try:
        from cityseg_lib.report.preflight import study_configs

        with tempfile.TemporaryDirectory() as tmp, _notebook_tools() as stand_ins:
            if not os.environ.get("CITYSCAPES_DATASET"):
                from cityseg_lib.data.demo import make_demo_dataset

                os.environ["CITYSCAPES_DATASET"] = str(make_demo_dataset(Path(tmp) / "cityscapes", train=1, val=1,
                                                                         test=0, size=(64, 32), coarse=False))
                try:
                    configs = study_configs("full")
                finally:
                    del os.environ["CITYSCAPES_DATASET"]
            else:
                configs = study_configs("full")
    except ImportError as err:
        plan, source = plan_from_params(n_train)
        return plan, f"{source}; {err.name or err} not installed"
    from cityseg_lib import runstore, sweep

    plan, seen = [], set()
    for stem, cfgs in configs.items():
        for cfg in cfgs if not stem.startswith("06") else []:
            key = json.dumps(runstore.computed_config(cfg), sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                fraction = (cfg.train_subset if isinstance(cfg.train_subset, float) else
                            (cfg.train_subset or n_train) / n_train)
                plan.append(_entry(f"{stem[:2]} {cfg.name}", cfg.model, 1, cfg.epochs, fraction,
                                   2.0 if cfg.augment == "augment" else 1.0, cfg.full_res_eval,
                                   scale=_scale(cfg, cfg.model)))
    mains = {cfgs[0].model: cfgs[0] for stem, cfgs in configs.items() if cfgs and stem[:2] in ("02", "03", "04")}
    p6 = _params("06_halving_sweep") or {}
    files = p6.get("sweep_files", {"unet": "sweep_unet.yaml", "swin2_jnet": "sweep_swin2_jnet.yaml"})
    for base in configs.get("06_halving_sweep", []):
        model = base.model
        if model not in files or not (_full_dir() / files[model]).is_file():
            continue
        cfg = sweep.load_sweep_config(_full_dir() / files[model])
        rungs = sweep.plan_rungs(len(sweep.grid_candidates(cfg.grid)), n_train, cfg.min_subset, cfg.rung_epochs,
                                 cfg.final_epochs)
        for rung in rungs:
            plan.append(_entry(f"06 sweep {model}: rung {rung.index}, {rung.candidates} trials", model, rung.candidates,
                               rung.epochs, rung.subset / n_train, full_res=bool(base.full_res_eval and
                                                                                  cfg.base.get("full_res_eval", False)),
                               chain=f"sweep {model}", stage=rung.index, scale=_scale(base, model)))
        if p6.get("train_tuned", True) and model in mains:
            plan.append(_entry(f"06 sweep {model}: tuned winner", model, 1, mains[model].epochs,
                               full_res=mains[model].full_res_eval, chain=f"sweep {model}", stage=len(rungs),
                               scale=_scale(mains[model], model)))
    note = f"; {' and '.join(stand_ins)} not installed: notebooks read as JSON" if stand_ins else ""
    return plan, ("cityseg_lib.report.preflight.study_configs('full') (every notebook run), "
                  f"params/full/sweep_*.yaml{note}")


#: GPU counts of the scale-out projection (runs are independent except the sweep's rungs).
SCALE_OUT_GPUS = (1, 8, 32)


def scale_out(plan: list[dict], seconds: list[float | None], gpus=SCALE_OUT_GPUS) -> dict[int, dict]:
    """Wall hours of the plan on each number of GPUs, one run per GPU (``cityseg --executor ray``):
    list scheduling with the sweeps' rung barriers, and the lower bound no schedule beats.
    ``seconds``: the cost of each plan entry (all its runs), None where not measured (left out)."""
    from cityseg_lib.execute.plan import lower_bound, makespan

    independent, chains = [], {}
    for entry, total in zip(plan, seconds):
        if total is None:
            continue
        runs = [total / entry["runs"]] * entry["runs"]
        if entry.get("chain"):
            chains.setdefault(entry["chain"], {}).setdefault(entry["stage"], []).extend(runs)
        else:
            independent.extend(runs)
    staged = [[stages[k] for k in sorted(stages)] for stages in chains.values()]
    return {n: {"hours": makespan(independent, staged, n) / 3600,
                "lower_bound_hours": lower_bound(independent, staged, n) / 3600} for n in gpus}


def _scale_out_line(label: str, table: dict[int, dict]) -> str:
    return f"{label}: " + ", ".join(f"{n} GPU{'s' if n > 1 else ''} {_fmt_hours(v['hours'])}"
                                    + (f" (>= {_fmt_hours(v['lower_bound_hours'])})" if n > 1 else "")
                                    for n, v in table.items())


def project(plan: list[dict], rates: dict[str, dict], n_train: int, n_val: int) -> tuple[list[dict], float]:
    """Seconds per plan entry. A run costs, as ``fit`` does it: per epoch the training images
    (``fraction`` of ``n_train``, times ``data_factor``) at the measured end-to-end training rate
    and a validation pass over ``n_val`` images at the measured evaluation rate; then the final
    evaluation of the best checkpoint (one more pass, two with the full-resolution evaluation),
    and the measured warm-up (compilation) once. Early stopping is ignored: an upper bound."""
    rows, total = [], 0.0
    for entry in plan:
        r = rates.get(entry["model"])
        if not r:
            rows.append({**entry, "hours": None})
            continue
        train_imgs = max(1, math.ceil(n_train * entry["fraction"])) * entry["data_factor"]
        scale = entry.get("scale", 1.0)
        val_pass = scale * n_val / r["eval_images_per_s"]
        per_run = (entry["epochs"] * (scale * train_imgs / r["images_per_s"] + val_pass)
                   + (2 if entry["full_res_eval"] else 1) * val_pass + r["warmup_s"])
        seconds = entry["runs"] * per_run
        total += seconds
        rows.append({**entry, "train_images_per_epoch": train_imgs, "hours": seconds / 3600})
    return rows, total


def full_size_flops(models: list[str]) -> dict[str, dict]:
    """Training and forward FLOPs per image of each model at its full-profile settings, counted on
    the ``meta`` device (no memory, no compute): available without a GPU."""
    out = {}
    for name in models:
        settings = full_profile_settings(name)
        options, size = dict(settings["model_options"]), tuple(settings["image_size"])
        if name == "swin2_jnet":
            options.setdefault("img_size", size)
        with torch.device("meta"):
            model = build_model(name, **options)
        out[name] = {**training_flops(model, size, "meta"), "size_hw": list(size),
                     "params": sum(t.numel() for t in model.parameters())}
    return out


#: bytes a finished run keeps per model parameter: last.pt (fp32 weights and AdamW's two moments,
#: 12) and best.pt (fp32 weights, 4); no code deletes a run's files, so they add up over the study
CHECKPOINT_BYTES_PER_PARAM = 16


def checkpoint_disk(plan: list[dict], models: dict[str, dict]) -> dict[str, float]:
    """GB of checkpoints the study leaves, per model: runs x parameters x :data:`CHECKPOINT_BYTES_PER_PARAM`."""
    out: dict[str, float] = {}
    for e in plan:
        if e["model"] in models:
            out[e["model"]] = out.get(e["model"], 0.0) + e["runs"] * models[e["model"]]["params"] * \
                CHECKPOINT_BYTES_PER_PARAM / 1e9
    return out


def entry_flops(e: dict, flops: dict[str, dict], n_train: int, n_val: int) -> float | None:
    """FLOPs of one plan entry (all its runs), priced like :func:`project` (train images x training
    FLOPs, validation passes x forward FLOPs, times the entry's pixel ``scale``); None if not counted."""
    f = flops.get(e["model"])
    if not f:
        return None
    train_imgs = max(1, math.ceil(n_train * e["fraction"])) * e["data_factor"]
    passes = e["epochs"] + (2 if e["full_res_eval"] else 1)
    return e.get("scale", 1.0) * e["runs"] * (e["epochs"] * train_imgs * f["train"] + passes * n_val * f["forward"])


def flop_projection(plan: list[dict], flops: dict[str, dict], n_train: int, n_val: int) -> dict[str, float]:
    """FLOPs of the whole plan per model: the arithmetic floor no GPU can beat."""
    out: dict[str, float] = {}
    for e in plan:
        f = entry_flops(e, flops, n_train, n_val)
        if f is not None:
            out[e["model"]] = out.get(e["model"], 0.0) + f
    return out


# ----------------------------------------------------------------------------- measurement


def _loader(ds, batch: int, samples: int, workers: int, cuda: bool) -> DataLoader:
    # as fit: shuffled, pinned memory on CUDA; sampling with replacement so a small generated
    # dataset serves any number of steps without restarting the workers
    sampler = RandomSampler(ds, replacement=True, num_samples=samples, generator=torch.Generator().manual_seed(0))
    return DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, pin_memory=cuda, drop_last=True,
                      persistent_workers=False)


def measure_model(name: str, options: dict, ds, args, device: torch.device) -> dict:
    cuda = device.type == "cuda"
    size, batch = tuple(args.size), args.batch_for[name]
    options = dict(options)
    if name == "swin2_jnet":
        options.setdefault("img_size", size)
    torch.manual_seed(0)
    model = build_model(name, **options).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    criterion = build_loss("cross_entropy")
    with torch.device("meta"):  # the same shapes, so the same count, without device time or memory
        meta_model = build_model(name, **options)
    flops = training_flops(meta_model, size, "meta")  # batch 1; dtype- and format-independent
    del meta_model
    optimizer = make_optimizer("adamw", model.parameters(), lr=1e-4, weight_decay=1e-4)
    step_model = torch.compile(model) if args.compile else model

    loader = _loader(ds, batch, batch * (args.warmup + 2 * args.steps), args.workers, cuda)
    it = iter(loader)

    def fetch():
        images, masks, _ = next(it)
        return to_device(images, masks, device, args.channels_last)

    # warm-up (worker start, compilation, cudnn autotuning): excluded
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        images, masks = fetch()
        train_step(step_model, criterion, optimizer, images, masks, args.amp)
    sync(device)
    warmup_s = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    # timed, as fit runs: no host sync between steps, one at the end -> images/s, TFLOP/s, MFU
    rss = RssSampler() if not cuda else None  # CPU only: a polling thread would steal the GIL from CUDA launches
    if rss:
        rss.__enter__()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        images, masks = fetch()
        loss = train_step(step_model, criterion, optimizer, images, masks, args.amp)
    sync(device)
    pipelined_s = time.perf_counter() - t0

    # timed again, instrumented: host wait in next() | copy + step + synchronize. With the sync the
    # GPU has nothing queued while the host waits, so the wait is time the GPU spends idle.
    waits, steps = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        images, masks, _ = next(it)
        t1 = time.perf_counter()
        images, masks = to_device(images, masks, device, args.channels_last)
        loss = train_step(step_model, criterion, optimizer, images, masks, args.amp)
        sync(device)
        waits.append(t1 - t0)
        steps.append(time.perf_counter() - t1)
    if rss:
        rss.__exit__(None, None, None)
    del it, loader
    final_loss = float(loss.item())
    peak = peak_cuda_mb(device) if cuda else rss.peak_mb

    # evaluation forward (for the projection): synthetic batch, no_grad, same autocast/format; the eager
    # model unless --eval-compiled (the compiled one would recompile: Dynamo guards on training and grad mode)
    eval_model = step_model if args.eval_compiled else model
    model.eval()
    x = torch.randn(batch, 3, *size, device=device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    eval_s = []
    with torch.no_grad():
        for i in range(args.eval_warmup + args.eval_steps):
            sync(device)
            t = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                eval_model(x).float().argmax(1)
            sync(device)
            if i >= args.eval_warmup:
                eval_s.append(time.perf_counter() - t)
    model.train()

    total = sum(waits) + sum(steps)
    ips = batch * args.steps / pipelined_s
    achieved = flops["train"] * ips / 1e12
    result = {
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()},
        "batch_size": batch,
        "params": params,
        "train_gflop_per_image": flops["train"] / 1e9,
        "forward_gflop_per_image": flops["forward"] / 1e9,
        "images_per_s": ips,
        "step_only_images_per_s": batch * args.steps / sum(steps),
        "synced_images_per_s": batch * args.steps / total,
        "ms_per_image": 1000 / ips,
        "data_wait_fraction": sum(waits) / total,
        "data_wait_ms_median": 1000 * sorted(waits)[len(waits) // 2],
        "peak_memory_mb": peak,
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if cuda else "process RSS",
        "achieved_tflops": achieved,
        "mfu": achieved / args.peak if args.peak else None,
        "eval_images_per_s": batch * len(eval_s) / sum(eval_s),
        "eval_compiled": bool(args.compile and args.eval_compiled),
        "warmup_s": warmup_s,
        "final_loss": final_loss,
    }
    del model, step_model, eval_model, optimizer, x
    gc.collect()
    if args.compile:
        torch._dynamo.reset()
    if cuda:
        torch.cuda.empty_cache()
    return result


# ----------------------------------------------------------------------------- main


def floor_report(plan: list[dict], models: list[str], peak: float, label: str, mfu: float) -> dict:
    """Print the FLOP floor of ``plan`` (FLOPs counted on the meta device: no GPU needed) at ``mfu``
    of ``peak`` TFLOP/s, in all and on 1, 8 and 32 GPUs; returns it for the JSON report."""
    full_flops = full_size_flops(models)
    study_flops = flop_projection(plan, full_flops, CITYSCAPES_TRAIN, CITYSCAPES_VAL)
    rate = peak * 1e12 * mfu
    floor_h = {m: f / rate / 3600 for m, f in study_flops.items()}
    per_image = ", ".join("%s %.3f" % (m, v["train"] / 1e12) for m, v in full_flops.items())
    per_model = ", ".join(f"{m} {_fmt_hours(h)}" for m, h in floor_h.items())
    print(f"\nFLOP floor at the full-profile settings ({per_image} TFLOP per training image): "
          f"{sum(study_flops.values()) / 1e18:.1f} EFLOP in all; at {100 * mfu:.0f}% MFU of "
          f"{peak:g} TFLOP/s ({label}): {_fmt_hours(sum(floor_h.values()))} ({per_model})")
    seconds = [None if (f := entry_flops(e, full_flops, CITYSCAPES_TRAIN, CITYSCAPES_VAL)) is None else f / rate
               for e in plan]
    table = scale_out(plan, seconds)
    print(_scale_out_line("FLOP floor on N GPUs (one run per GPU; sweep rungs wait for each other)", table))
    return {"full_size_flops_per_image": full_flops, "study_flops_by_model": study_flops,
            "flop_floor": {"peak_tflops": peak, "peak_source": label, "assumed_mfu": mfu, "hours_by_model": floor_h,
                           "scale_out": table}}


def plan_only(args) -> int:
    """``--plan-only``: the study's runs, its FLOP floor and the scale-out projection; no measurement."""
    plan, source = plan_from_study(CITYSCAPES_TRAIN)
    if args.epochs:
        plan = [{**p, "epochs": args.epochs} for p in plan]
    print(f"the full-profile study ({source}): {sum(p['runs'] for p in plan)} runs")
    print(format_table(["part", "model", "runs", "epochs", "train images/epoch", "pixels x", "waits for"],
                       [[p["part"], p["model"], p["runs"], p["epochs"],
                         f"{max(1, math.ceil(CITYSCAPES_TRAIN * p['fraction'])) * p['data_factor']:.0f}",
                         f"{p['scale']:.2f}", f"{p['chain']} stage {p['stage'] - 1}" if p["chain"] and p["stage"] else "-"]
                        for p in plan]))
    floor_report(plan, args.models, args.peak_tflops or 989.4,
                 "--peak-tflops" if args.peak_tflops else "H100 SXM, assumed", args.assume_mfu)
    disk = checkpoint_disk(plan, full_size_flops(sorted({p["model"] for p in plan})))
    print(f"disk: the runs' checkpoints come to about {sum(disk.values()):.0f} GB ("
          + ", ".join(f"{m} {gb:.0f} GB" for m, gb in sorted(disk.items()))
          + f"; {CHECKPOINT_BYTES_PER_PARAM} bytes per parameter per run: last.pt with AdamW's state, and best.pt), "
          "besides the dataset (~11 GB) and the preprocessed image cache (runs/, data/ and $CITYSEG_CACHE)")
    return 0


def _fmt_hours(h: float | None) -> str:
    if h is None:
        return "-"
    if h >= 1:
        return f"{h:.1f} h"
    return f"{60 * h:.0f} min" if h >= 1 / 6 else f"{60 * h:.1f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="auto", help="auto | cuda | cuda:N | cpu")
    parser.add_argument("--models", nargs="+", default=["simple_fcn", "unet", "swin2_jnet"])
    parser.add_argument("--reduced", action="store_true",
                        help="small size/batch/models and few steps (automatic without CUDA)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="training size (default: the full profile's, 768 768; reduced 256 256)")
    parser.add_argument("--batch", type=int, help="batch size for every model (default: the full profile's per model; reduced 2)")
    parser.add_argument("--warmup", type=int, help="untimed steps (default 15; reduced 1)")
    parser.add_argument("--steps", type=int, help="timed steps (default 40; reduced 3)")
    parser.add_argument("--eval-steps", type=int, help="timed evaluation batches (default 10; reduced 2)")
    parser.add_argument("--eval-warmup", type=int, default=None,
                        help="untimed evaluation batches first (default 3; reduced 1)")
    parser.add_argument("--eval-compiled", action="store_true",
                        help="time evaluation on the compiled model (compiles it a second time, for eval mode "
                             "under no_grad) instead of the eager one")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default min(cpus, 8), as fit)")
    parser.add_argument("--frames", type=int, default=None, help="generated 2048x1024 frames (default 48, shared with bench_data)")
    parser.add_argument("--data-root", type=Path, default=None, help="a Cityscapes root to read instead of generated frames")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device, overriding the table")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile (default: as the full profile trains, params/full/train.yaml's "
                             "compile, else TrainConfig's default, off; never for reduced)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast (default on for CUDA, off on CPU as in fit)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels_last (default on for CUDA, off on CPU as in fit)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every run in the projection (default: the params')")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 without CUDA, as the demo profile; torch's default with CUDA)")
    parser.add_argument("--assume-mfu", type=float, default=0.4,
                        help="MFU for the FLOP-floor estimate of the study time (default 0.4)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default reports/benchmarks/gpu.json)")
    parser.add_argument("--plan-only", action="store_true",
                        help="print the study's runs, FLOP floor and time on 1/8/32 GPUs; measure nothing (any machine)")
    args = parser.parse_args(argv)
    if args.plan_only:
        return plan_only(args)

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    reduced = args.reduced or not cuda
    if args.compile is None:  # measure what the study will run, so that its projection holds
        args.compile = cuda and not reduced and _full_profile_compiles()
    args.amp = cuda if args.amp is None else args.amp
    args.channels_last = cuda if args.channels_last is None else args.channels_last
    args.warmup = args.warmup if args.warmup is not None else (1 if reduced else 15)
    args.steps = args.steps or (3 if reduced else 40)
    args.eval_steps = args.eval_steps or (2 if reduced else 10)
    args.eval_warmup = args.eval_warmup if args.eval_warmup is not None else (1 if reduced else 3)
    args.workers = args.workers if args.workers is not None else min(os.cpu_count() or 1, 8 if cuda else 2)
    frames = args.frames or 48
    threads = args.threads if args.threads is not None else (0 if cuda else 1)
    if threads:
        torch.set_num_threads(threads)
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    env = provenance()
    device_name = env["device"]
    if args.peak_tflops:
        args.peak, peak_label = args.peak_tflops, "--peak-tflops"
    elif cuda:
        args.peak, peak_label = peak_tflops_for(device_name)
    else:
        args.peak, peak_label = None, "CPU: no bf16 peak table"

    profile = {m: full_profile_settings(m) for m in args.models}
    sizes = {tuple(p["image_size"]) for p in profile.values()}
    args.size = tuple(args.size) if args.size else ((256, 256) if reduced else (sizes.pop() if len(sizes) == 1 else (768, 768)))
    args.batch_for = {m: args.batch or (2 if reduced else profile[m]["batch_size"]) for m in args.models}
    options = {m: REDUCED_OPTIONS[m] if reduced else profile[m]["model_options"] for m in args.models}

    root = args.data_root or ensure_demo_data(frames)
    cache_dir = Path(os.environ["CITYSEG_CACHE"]) if os.environ.get("CITYSEG_CACHE") else bench_data_root() / "cache"
    ds = CityscapesSegmentation(root, "train", args.size, cache_dir=cache_dir, normalize=False)  # as fit
    t0 = time.perf_counter()  # build the cache first (untimed), as the first epoch of a study does
    for _ in DataLoader(ds, batch_size=8, num_workers=args.workers):
        pass
    print(f"{device_name}{' (REDUCED mode: not a GPU report)' if reduced else ''}: {len(ds)} cached frames at "
          f"{args.size[0]}x{args.size[1]} (cache pass {time.perf_counter() - t0:.1f} s), {args.workers} workers, "
          f"amp={args.amp} channels_last={args.channels_last} compile={args.compile}, peak {args.peak} TFLOP/s "
          f"({peak_label}), {args.warmup} warm-up + {args.steps} timed steps", flush=True)

    # GPU-free first: the study's plan and its FLOP floor (in the JSON before any model is measured)
    plan, plan_source = plan_from_study(CITYSCAPES_TRAIN)
    if args.epochs:
        plan = [{**p, "epochs": args.epochs} for p in plan]
    ref_peak, ref_label = (args.peak, peak_label) if args.peak else (989.4, "H100 SXM, assumed")
    floor = floor_report(plan, args.models, ref_peak, ref_label, args.assume_mfu)

    settings = {"reduced": reduced, "device": str(device), "size_hw": list(args.size), "batch_size": args.batch_for,
                "amp_bf16": args.amp, "channels_last": args.channels_last, "compile": args.compile,
                "eval_compiled": bool(args.compile and args.eval_compiled),
                "warmup_steps": args.warmup, "timed_steps": args.steps, "eval_warmup": args.eval_warmup,
                "eval_steps": args.eval_steps, "num_workers": args.workers, "pin_memory": cuda,
                "torch_threads": torch.get_num_threads(), "data_root": str(root), "frames": len(ds),
                "peak_bf16_tflops": args.peak, "peak_source": peak_label, "full_profile": profile,
                "projection": {"epochs_override": args.epochs, "train_images": CITYSCAPES_TRAIN, "val_images": CITYSCAPES_VAL,
                               "plan_source": plan_source}}
    results: dict[str, dict] = {}

    def report(finished: bool) -> tuple[Path, list[dict], dict, float, dict]:
        """Write the JSON: the models measured so far and the projection over them (after every model,
        so a run killed by a time limit keeps what it finished)."""
        proj_rows, total_s = project(plan, results, CITYSCAPES_TRAIN, CITYSCAPES_VAL)
        by_model: dict[str, float] = {}
        for p in proj_rows:
            if p["hours"] is not None:
                by_model[p["model"]] = by_model.get(p["model"], 0.0) + p["hours"]
        measured_scale_out = scale_out(plan, [None if p["hours"] is None else 3600 * p["hours"] for p in proj_rows])
        target = {"text": "report only: run end to end on an H100/H200 (no numeric target)",
                  "met": None if reduced or not finished else True,
                  "note": ("reduced CPU run: the GPU run is still owed" if reduced else
                           "GPU run done" if finished else "GPU run incomplete: see status")}
        status = {"finished": finished, "done": list(results), "pending": [m for m in args.models if m not in results]}
        path = write_report("gpu", benchmark="GPU report: images/s, memory, MFU, data wait, projected study time",
                            settings=settings, results={"models": results, "projection": proj_rows,
                                                        "projected_hours_by_model": by_model, **floor,
                                                        "scale_out_measured": measured_scale_out,
                                                        "projected_total_hours": total_s / 3600},
                            target=target, out=args.out, env=env, status=status)
        return path, proj_rows, by_model, total_s, measured_scale_out

    headers = ["model".ljust(max(map(len, args.models))), "batch", "img/s", "img/s step only", "peak GiB", "GFLOP/img (train)", "TFLOP/s", "MFU %",
               "data wait %", "eval img/s", "warm-up s"]

    def row(n: str, r: dict) -> list:
        return [n, r["batch_size"], r["images_per_s"], r["step_only_images_per_s"], r["peak_memory_mb"] / 1024,
                r["train_gflop_per_image"], r["achieved_tflops"], None if r["mfu"] is None else 100 * r["mfu"],
                100 * r["data_wait_fraction"], r["eval_images_per_s"], r["warmup_s"]]

    report(False)
    print()
    print(format_table(headers, []))  # the header; each model's row follows as it is measured
    for name in args.models:
        t = time.perf_counter()
        results[name] = measure_model(name, options[name], ds, args, device)
        print(format_table(headers, [row(name, results[name])]).splitlines()[-1] + f"  ({time.perf_counter() - t:.0f} s)",
              flush=True)
        _, _, by_model, _, _ = report(False)
        print(f"  {name}: {_fmt_hours(by_model.get(name))} of the projected study on one GPU", flush=True)

    path, proj_rows, by_model, total_s, measured_scale_out = report(True)
    print()
    print(format_table(headers, [row(n, r) for n, r in results.items()]))
    print(f"\nprojected full-profile study on Cityscapes ({CITYSCAPES_TRAIN} train / {CITYSCAPES_VAL} val; "
          f"plan: {plan_source}):")
    print(format_table(["part", "model", "runs", "epochs", "train images/epoch", "time"],
                       [[p["part"], p["model"], p["runs"], p["epochs"], f"{p.get('train_images_per_epoch', 0):.0f}",
                         _fmt_hours(p["hours"])] for p in proj_rows]))
    print("by model: " + ", ".join(f"{m} {_fmt_hours(h)}" for m, h in by_model.items()))
    missing = sorted({p["model"] for p in proj_rows if p["hours"] is None})
    print(f"total {_fmt_hours(total_s / 3600)}" + (f" (models not measured, left out: {', '.join(missing)})" if missing else "")
          + (" -- REDUCED mode on CPU: not a projection of a GPU run" if reduced else ""))
    print(_scale_out_line("on N GPUs (one run per GPU, --executor ray; sweep rungs wait for each other)",
                          measured_scale_out) + (" -- REDUCED: CPU rates" if reduced else ""))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
