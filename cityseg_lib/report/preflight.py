"""What ``cityseg report`` checks before the first notebook starts, each failure one line.

* every notebook's parameters: the keys (papermill's view of the ``parameters`` cell), the type
  of each value against the notebook's default, and the values, by building the TrainConfigs and
  SweepConfigs they become with the same functions the notebooks call (:mod:`.experiments`);
* the dataset root (exists, official layout with fine train and val splits; directory listings
  only), or the profile's demo-data settings when the data is generated;
* the pretrained Swin weights of every run that asks for them: a local ``weights`` file that loads
  into the run's encoder, or the Hugging Face hub (its cache with ``HF_HUB_OFFLINE=1``, else a
  reachable hub).

A training run that would fail on a bad value hours into the build fails here instead.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.report.weights_check import check_weights

__all__ = ["NULLABLE", "check", "study_configs", "check_report", "check_values", "check_data_root", "check_weights",
           "notebook_defaults", "check_run_lengths"]

GENERATED = "<generated>"  # the data root of the configs checked before the build generates the data


def notebook_defaults(path: Path) -> dict:
    """The ``parameters`` cell's ``name = literal`` assignments of a notebook."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    out = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "mapping"}.get(type(value), type(value).__name__)


#: Notebook parameters outside the training configs, and the least value each takes (counts and
#: strides: a stride of 0 or a negative count fails inside the notebook, after its kernel started).
MINIMA = {"n_samples": 0, "stats_max_images": 0, "stats_stride": 1, "n_qualitative": 0, "inference_images": 0,
          "speed_rounds": 0, "cpu_threads": 0}


#: Parameters whose ``None`` means something (the notebook documents it: "None: skip").
NULLABLE = {"resolution_size"}


def check_values(stem: str, params: dict, defaults: dict, source: str) -> None:
    """Each parameter has the kind of the notebook's default (number, string, list, mapping, bool),
    ``None`` only where :data:`NULLABLE` allows it, and the counts of :data:`MINIMA` are integers
    at or above their least value. List items and lengths are checked by the run builders
    (:mod:`.experiments`), which preflight calls too."""
    for key, value in params.items():
        if key not in defaults or defaults[key] is None or (value is None and key in NULLABLE):
            continue
        want, got = _kind(defaults[key]), _kind(value)
        if want != got and not (want == "number" and got == "number"):
            raise CitysegError(f"{source}: {key}={value!r} is not a {want} (notebook {stem} expects a {want}, "
                               f"like its default {defaults[key]!r})")
        if key in MINIMA and (not isinstance(value, int) or value < MINIMA[key]):
            raise CitysegError(f"{source}: {key}={value!r} must be an integer >= {MINIMA[key]}")


def check_data_root(root: Path, where: str) -> None:
    """The dataset root exists and has the official layout with fine ``train`` and ``val`` frames."""
    from cityseg_lib.data.layout import find_samples

    if not root.is_dir():
        raise CitysegError(f"{where}: dataset root {root} does not exist")
    if not (root / "leftImg8bit").is_dir() or not (root / "gtFine").is_dir():
        raise CitysegError(f"{where}: dataset root {root} has no leftImg8bit/ and gtFine/ folders (the official "
                           "Cityscapes layout; `cityseg check-data --root` explains)")
    for split in ("train", "val"):
        if not find_samples(root, split, "fine"):
            raise CitysegError(f"{where}: dataset root {root} has no fine-labelled {split} frames")


def _data_root(profile: str, params: dict[str, dict]) -> str:
    """The root the notebooks will use: a ``data_root`` parameter, ``$CITYSCAPES_DATASET``, or the
    profile's generated data (its settings checked; it is made by the build before notebook 01)."""
    from cityseg_lib.data.source import data_settings, generation_args
    from cityseg_lib.paths import resolve_data_root

    roots = {stem: p.get("data_root") for stem, p in params.items() if p.get("data_root")}
    for stem, root in roots.items():
        check_data_root(resolve_data_root(root), f"{stem}: data_root")
    if os.environ.get("CITYSCAPES_DATASET"):
        root = resolve_data_root(None)
        check_data_root(root, "CITYSCAPES_DATASET")
        return str(root)
    settings = data_settings(profile)
    if not roots and not settings.get("generate"):
        raise CitysegError(f"profile {profile!r} needs the real Cityscapes: set CITYSCAPES_DATASET (or data_root) to "
                           "the folder holding leftImg8bit/ and gtFine/")
    if not roots and settings.get("generate"):
        generation_args(profile, settings)  # the build generates the data: its settings, each named in data.yaml
    return next(iter(roots.values()), "") or GENERATED


def _configs(profile: str, params: dict[str, dict], root: str, sources: dict[str, str],
             read: tuple = ()) -> dict[str, list[TrainConfig]]:
    """The TrainConfigs (and checked sweep configs) of notebooks 02-06, built as the notebooks build them:
    05 and 06 on the ablation reference of 03 and 04 (their main run with one recipe) as this build makes
    it, or for the notebooks in ``read`` (not run in this build) as their results hand it on
    (:func:`experiments.ablation_config`), as 05 and 06 read it."""
    from cityseg_lib.report import experiments as ex

    def p(stem):
        return params[stem]

    def root_of(stem):
        return p(stem).get("data_root") or root

    out: dict[str, list[TrainConfig]] = {}
    for stem, build in (
        ("02_baseline_fcn", lambda q: ex.baseline_runs(profile, root_of(stem), q["train"], q["model_options"],
                                                         q["seeds"])),
        ("03_unet", lambda q: ex.unet_runs(profile, root_of(stem), q["train"], q["model_options"],
                                           q["constant_gamma"], q["augment_modes"], q["optimizers"],
                                           q["resolution_size"], q["seeds"], q["main_model_options"])),
        ("04_swin2_jnet", lambda q: ex.swin_runs(profile, root_of(stem), q["train"], q["encoder"], q["pretrained"],
                                                 q["weights"], q["encoder_kwargs"], q["dropout"], q["compare_dropout"],
                                                 q["compare_batchnorm"], q["seeds"])),
    ):
        if stem in params:
            out[stem] = list(_named(sources[stem], lambda: build(p(stem))).values())
    def main(stem: str) -> TrainConfig | None:
        """The run 05 and 06 build on: the notebook's ablation reference (its main run with one recipe)."""
        if stem in read:
            try:
                return ex.ablation_config(profile, {"03_unet": "unet", "04_swin2_jnet": "swin2_jnet"}[stem])
            except CitysegError:
                pass  # no result yet: --only checks it before any notebook (build.check_earlier_results)
        if not out.get(stem):
            return None
        main_cfg = out[stem][0]
        return next((c for c in out[stem] if c.name == f"{main_cfg.name}_ablation"), main_cfg)

    if "05_loss_comparison" in params and main("03_unet"):
        q = p("05_loss_comparison")
        runs = _named(sources["05_loss_comparison"], lambda: ex.loss_runs(profile, main("03_unet"), root_of("05_loss_comparison"), q["train"],
                                                                 q["losses"], q["seeds"]))
        out["05_loss_comparison"] = [c for cs in runs.values() for c in cs]
    if "06_halving_sweep" in params:
        from dataclasses import replace

        from cityseg_lib.strict import from_dict
        from cityseg_lib.sweep import load_sweep_config

        q = p("06_halving_sweep")
        mains = {m.model: m for m in (main(stem) for stem in out if stem[:2] in ("02", "03", "04")) if m}
        sweeps = _named(sources["06_halving_sweep"], lambda: ex.sweep_configs(
            profile, root_of("06_halving_sweep"), q["sweep_files"], q["sweep_overrides"], mains))
        out["06_halving_sweep"] = []
        for model, (path, overrides) in sweeps.items():
            cfg = load_sweep_config(path, overrides)
            base = from_dict(TrainConfig, cfg.base, source=str(path))
            out["06_halving_sweep"].append(replace(base, name=f"{cfg.name} ({model})"))
    return out


def _named(source: str, build):
    """Run ``build``; a CitysegError is prefixed with the notebook (and params file) it concerns."""
    try:
        return build()
    except CitysegError as err:
        raise CitysegError(f"{source}: {err}") from None


def check_report(profile: str, params: dict[str, dict], defaults: dict[str, dict], sources: dict[str, str],
                 selected: list[str] | None = None) -> dict[str, list[TrainConfig]]:
    """Every check above for the notebooks in ``params`` (``{stem: parameters}``, defaults included);
    the weights only for the ``selected`` notebooks (all when None); 05 and 06 on the main runs of
    03's and 04's results when those are not ``selected`` (as the notebooks read them). Returns their run configs."""
    from cityseg_lib.models.registry import check_model

    for stem, values in params.items():
        check_values(stem, values, defaults[stem], sources[stem])
    root = _data_root(profile, params)
    configs = _configs(profile, params, root, sources, tuple(s for s in ("03_unet", "04_swin2_jnet")
                                                            if selected and s not in selected))
    for stem, cfgs in configs.items():
        for cfg in cfgs:
            try:
                check_model(cfg.model, cfg.model_options, cfg.crop_size or cfg.image_size)
            except CitysegError as e:
                raise CitysegError(f"{sources[stem]}: run {cfg.name}: {e}") from None
            if selected is None or stem in selected:
                check_weights(cfg, sources[stem])
    return configs


def check(profile: str, retrain: bool = False, overrides: dict[str, dict] | None = None,
          selected: list[str] | None = None) -> tuple[dict[str, dict], dict[str, list[TrainConfig]]]:
    """All checks for the seven notebooks of ``profile`` with ``overrides`` (``{"03": {...}}``):
    returns their papermill parameters and the run configs of notebooks 02-06."""
    from cityseg_lib.paths import params_dir
    from cityseg_lib.report.build import NOTEBOOKS, _select, notebook_params, notebook_paths

    params_dir(profile)  # an unknown profile is an error listing the valid ones
    paths = notebook_paths()
    per_nb: dict[str, dict] = {}
    for key, values in (overrides or {}).items():
        for stem in _select([key]):
            per_nb.setdefault(stem, {}).update(values)
    params = {stem: notebook_params(profile, stem, retrain, per_nb.get(stem)) for stem in NOTEBOOKS}
    defaults = {stem: notebook_defaults(paths[stem]) for stem in NOTEBOOKS}
    sources = {stem: f"notebook {stem} ({params_dir(profile) / f'{stem}.yaml'}"
               + (f" with --set {', '.join(per_nb[stem])})" if per_nb.get(stem) else ")") for stem in NOTEBOOKS}
    configs = check_report(profile, {s: {**defaults[s], **p} for s, p in params.items()}, defaults, sources, selected)
    return params, configs


def check_run_lengths(configs: dict[str, list[TrainConfig]], root: str | os.PathLike, selected: list[str]) -> None:
    """Refuse, before any notebook starts, a finished run longer than its notebook asks: an earlier
    build with a larger ``epochs`` extended it in place (its shorter results are in ``history/``),
    and the notebook would stop at that run halfway through the build. ``root``: the dataset
    root the notebooks use (the run folders are named by its fingerprint; it must exist)."""
    from dataclasses import replace

    from cityseg_lib.runstore import is_finished, run_dir

    for stem in selected:
        for cfg in configs.get(stem, []) if stem[:2] in ("02", "03", "04", "05") else []:
            out = run_dir(cfg if cfg.data_root not in ("", GENERATED) else replace(cfg, data_root=str(root)))
            try:
                is_finished(out, cfg)
            except CitysegError as err:
                raise CitysegError(f"notebook {stem}: {err} (--set {stem[:2]}.train={{epochs: ...}} with that run's "
                                   f"length reuses it; --retrain --only {stem[:2]} trains the notebook's runs again, "
                                   "the earlier ones moving to .replaced/)") from None


def study_configs(profile: str, overrides: dict[str, dict] | None = None) -> dict[str, list[TrainConfig]]:
    """The TrainConfigs of every run notebooks 02-05 train (and the sweeps' base) in ``profile``:
    what benchmarks and cost estimates should read instead of the params files."""
    return check(profile, overrides=overrides, selected=[])[1]
