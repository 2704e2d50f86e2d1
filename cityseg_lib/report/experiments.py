"""The study's training runs: the configs each notebook builds from its parameters, written once.

Notebooks 02-06 call these functions, and ``cityseg report`` calls the same ones with the same
parameters before any notebook starts (:mod:`.preflight`), so a bad key or value fails there in
one line, and what a notebook trains is defined in one place. Every run is
:func:`cityseg_lib.config.train_config`: TrainConfig defaults <- the profile's shared training
block ``params/PROFILE/train.yaml`` <- the notebook's ``train`` parameter <- what the notebook
fixes for that run (model, model options, loss, seed, augmentation...).

Two recipes, when the profile has ``params/PROFILE/main.yaml`` (the demo): the *main* runs of
02-04 (each architecture with each seed: the architecture comparison and the headline numbers)
train with ``train.yaml`` <- ``main.yaml``; every ablation (03's scheduler, augmentation, optimiser
and training-size runs, 04's dropout and BatchNorm runs, 05's losses, 06's sweeps and tuned models)
trains with ``train.yaml`` alone and is compared with its architecture's *ablation reference*: the
main run's model trained with that recipe, with the same seeds (``NAME_ablation``,
``NAME_ablation_seedS``). Without ``main.yaml`` (the full and smoke profiles) the reference is the
main run itself and nothing more is trained.

The loss comparison (05) is the U-Net reference of notebook 03 with another loss and seed, and the
tuned models (06) are the references of 03/04 with a sweep winner's parameters: those derive from
the reference's config instead of repeating its options.
"""

from __future__ import annotations

from pathlib import Path

from cityseg_lib.config import TrainConfig, train_config
from cityseg_lib.errors import CitysegError
from cityseg_lib.runstore import computed_config
from cityseg_lib.strict import config_to_dict

__all__ = ["SWEEP_SHARED_KEYS", "check_seeds", "seed_runs", "seed_group", "baseline_runs", "unet_runs", "swin_runs", "loss_runs", "main_run", "main_config",
           "ablation_runs", "ablation_key", "ablation_run", "ablation_config", "sweep_overrides", "sweep_configs"]

#: Keys of a model's main run that its sweep's trials take too (unless the grid varies them): the
#: trials see the data as the main run does, so the winner transfers to it.
SWEEP_SHARED_KEYS = ("image_size", "batch_size", "max_batches", "max_val_images")

_MAIN_NOTEBOOK = {"simple_fcn": "02", "unet": "03", "swin2_jnet": "04"}


def check_seeds(seeds, main_seed: int | None = None, least: int = 0) -> list[int]:
    """``seeds`` as distinct integers >= 0, at least ``least`` of them and, when ``main_seed`` is
    given and ``seeds`` is not empty, holding it: the main run keeps its own seed (``seed`` of the
    training block), so a list without it would train one seed more than it names."""
    if not isinstance(seeds, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                                                   for v in seeds):
        raise CitysegError(f"seeds={seeds!r}: expected a list of integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise CitysegError(f"seeds={list(seeds)}: a seed is listed twice")
    if len(seeds) < least:
        raise CitysegError(f"seeds={list(seeds)}: at least {least} seed(s) needed")
    if main_seed is not None and seeds and main_seed not in seeds:
        raise CitysegError(f"seeds={list(seeds)} must include the main run's seed {main_seed} (the training block's "
                           f"seed; to change it, train={{seed: {seeds[0]}}})")
    return list(seeds)


def seed_runs(profile: str, main: TrainConfig, seeds: list[int] | tuple = ()) -> dict[str, TrainConfig]:
    """``main`` again with each other seed of ``seeds``: ``{NAME_seedS: config}`` (``seeds`` holds
    the main run's own seed, or is empty: the main run only). Every main architecture runs with
    several seeds, so its comparisons show the spread a seed causes; the loss comparison (05) names
    its cross-entropy runs the same way and so reuses these."""
    seeds = check_seeds(seeds, main.seed)
    values = {k: v for k, v in config_to_dict(main).items() if k not in ("name", "profile")}
    return {f"{main.name}_seed{s}": train_config(profile, f"{main.name}_seed{s}", None, **{**values, "seed": int(s)})
            for s in seeds if int(s) != main.seed}


def seed_group(cfgs: dict[str, TrainConfig], main: str) -> list[str]:
    """The keys of ``cfgs`` that are run ``main`` with some seed (itself first, then by seed)."""
    others = sorted((k for k in cfgs if k.startswith(f"{main}_seed")), key=lambda k: cfgs[k].seed)
    return [main, *others]


def same_run(a: TrainConfig, b: TrainConfig) -> bool:
    """Whether ``a`` and ``b`` train the same run (one computation, as many epochs): one folder. Compared
    key by key (a weights file by its path: nothing is read here, the pre-checks judge the file)."""
    from cityseg_lib.runstore.identity import EXECUTION_KEYS

    def keys(cfg: TrainConfig) -> dict:
        return {k: v for k, v in config_to_dict(cfg).items() if k not in EXECUTION_KEYS}

    return keys(a) == keys(b) and a.epochs == b.epochs


def ablation_runs(profile: str, main: TrainConfig, train: dict | None, seeds: list[int] | tuple = (),
                  **fixed) -> dict[str, TrainConfig]:
    """The ablation reference of the main run ``main`` (built with ``fixed``: what its notebook fixes),
    when the profile trains its main runs with a recipe of their own (``main.yaml``): the same run
    with the shared recipe alone, ``{NAME_ablation: config, NAME_ablation_seedS: ...}`` for each seed
    of ``seeds``; ``{}`` when the two recipes are one (the main runs are then their own reference)."""
    ref = train_config(profile, f"{main.name}_ablation", train, **fixed)
    if same_run(ref, main):
        return {}
    return {ref.name: ref, **seed_runs(profile, ref, seeds)}


def ablation_key(cfgs: dict[str, TrainConfig], main: str) -> str:
    """The key of ``main``'s ablation reference in a notebook's ``cfgs``: ``MAIN_ablation``, or ``main``
    itself when the profile has one recipe."""
    return f"{main}_ablation" if f"{main}_ablation" in cfgs else main


def baseline_runs(profile: str, data_root: str, train: dict, model_options: dict, seeds: list[int] | tuple = ()
                  ) -> dict[str, TrainConfig]:
    """02: the SimpleFCN baseline (``simple_fcn``), and again with each other seed of ``seeds``."""
    main = train_config(profile, "simple_fcn", train, main=True, data_root=str(data_root), model="simple_fcn",
                        model_options=model_options)
    return {"simple_fcn": main, **seed_runs(profile, main, seeds)}


def unet_runs(profile: str, data_root: str, train: dict, model_options: dict, constant_gamma: float | None,
              augment_modes: list[str], optimizers: list[str] = (), resolution_size: list[int] | None = None,
              seeds: list[int] | tuple = (), main_model_options: dict | None = None) -> dict[str, TrainConfig]:
    """03: the main U-Net (``unet``: ``model_options`` <- ``main_model_options``, the main runs' own width
    or depth, when the profile trains them with a recipe of their own), again with each other seed of
    ``seeds`` (``unet_seedS``), its ablation reference with each seed (``model_options`` alone; :func:`ablation_runs`),
    and with the ablation recipe: the same with a constant learning rate, one run per
    augmentation mode other than ``none`` (``none`` is the main run), one per optimiser other than
    the main run's (Section 3.3: AdamW against Adam and Adamax), and one at ``resolution_size``
    (Section 3.1: is the reference's training size enough?)."""
    if not isinstance(main_model_options, (dict, type(None))):
        raise CitysegError(f"main_model_options={main_model_options!r}: expected a mapping of U-Net options "
                           "(e.g. {base_width: 16}) or {}")
    base = dict(data_root=str(data_root), model="unet", model_options=model_options)
    runs = {"unet": train_config(profile, "unet", train, main=True,
                                 **{**base, "model_options": {**model_options, **(main_model_options or {})}})}
    runs.update(seed_runs(profile, runs["unet"], seeds))
    runs.update(ablation_runs(profile, runs["unet"], train, seeds, **base))
    if constant_gamma is not None:
        runs["unet_constant_lr"] = train_config(profile, "unet_constant_lr", train, gamma=constant_gamma, **base)
    for mode in augment_modes:
        if mode != "none":
            runs[f"unet_aug_{mode}"] = train_config(profile, f"unet_aug_{mode}", train, augment=mode, **base)
    for opt in optimizers:
        if opt != runs[ablation_key(runs, "unet")].optimizer:
            runs[f"unet_opt_{opt}"] = train_config(profile, f"unet_opt_{opt}", train, optimizer=opt, **base)
    if resolution_size:
        if (not isinstance(resolution_size, (list, tuple)) or len(resolution_size) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in resolution_size)):
            raise CitysegError(f"resolution_size={resolution_size!r}: expected [H, W], two positive integers "
                               "(or null: no resolution comparison)")
        h, w = resolution_size
        runs["unet_size"] = train_config(profile, f"unet_{h}x{w}", train, image_size=[h, w], **base)
    return runs


def swin_runs(profile: str, data_root: str, train: dict, encoder: str, pretrained: bool, weights: str,
              encoder_kwargs: dict, dropout: float, compare_dropout: bool, compare_batchnorm: bool,
              seeds: list[int] | tuple = ()) -> dict[str, TrainConfig]:
    """04: the main Swin2-JNet, again with each other seed of ``seeds``, its ablation reference with
    each seed when the profile has a main recipe (:func:`ablation_runs`), and, as asked, the reference
    without dropout and without BatchNorm (the latter only when the model has a switch for it)."""
    from cityseg_lib.models.options import batchnorm_option, swin_options

    options = swin_options(encoder=encoder, pretrained=pretrained, weights=weights, encoder_kwargs=encoder_kwargs,
                           dropout=dropout)
    base = dict(data_root=str(data_root), model="swin2_jnet")
    runs = {"swin2_jnet": train_config(profile, "swin2_jnet", train, main=True, model_options=options, **base)}
    runs.update(seed_runs(profile, runs["swin2_jnet"], seeds))
    runs.update(ablation_runs(profile, runs["swin2_jnet"], train, seeds, model_options=options, **base))
    if compare_dropout:
        runs["swin2_jnet_no_dropout"] = train_config(profile, "swin2_jnet_no_dropout", train,
                                                     model_options={**options, "dropout": 0.0}, **base)
    switch = batchnorm_option("swin2_jnet")
    if compare_batchnorm and switch:
        runs["swin2_jnet_no_batchnorm"] = train_config(profile, "swin2_jnet_no_batchnorm", train,
                                                       model_options={**options, switch: False}, **base)
    return runs


def loss_runs(profile: str, unet: TrainConfig, data_root: str, train: dict, losses: list[str], seeds: list[int]
              ) -> dict[str, list[TrainConfig]]:
    """05: ``{loss: [config of each seed]}``, each the U-Net ``unet`` (notebook 03's ablation
    reference, :func:`ablation_config`: its main run when the profile has one recipe) with ``train``
    over it and that loss and seed. A run that computes what ``unet`` does but for its seed takes the
    name notebook 03 gives it (``unet_ablation``, ``unet_ablation_seedS``, or ``unet``, ``unet_seedS``:
    :func:`seed_runs`), so 03's finished runs are reused instead of trained twice."""
    seeds = check_seeds(seeds, least=1)  # every loss needs a run; its seeds need not hold the main run's
    values = {k: v for k, v in config_to_dict(unet).items() if k not in ("name", "profile")}
    values["data_root"] = str(data_root)

    def unseeded(cfg: TrainConfig) -> dict:
        return {k: v for k, v in computed_config(cfg).items() if k != "seed"}

    out: dict[str, list[TrainConfig]] = {}
    for loss in losses:
        for seed in seeds:
            cfg = train_config(profile, f"loss_{loss}_seed{seed}", None, **{**values, **(train or {}),
                                                                           "loss": loss, "seed": seed})
            if unseeded(cfg) == unseeded(unet) and cfg.epochs == unet.epochs:
                name = unet.name if int(seed) == unet.seed else f"{unet.name}_seed{seed}"
                cfg = train_config(profile, name, None, **{**values, **(train or {}), "loss": loss, "seed": seed})
            out.setdefault(loss, []).append(cfg)
    return out


def main_run(profile: str, model: str) -> str:
    """The main run of ``model`` (``simple_fcn``, ``unet``, ``swin2_jnet``: notebooks 02-04), read
    from that notebook's typed result: what 05 and 06 build on."""
    from cityseg_lib.errors import CitysegError
    from cityseg_lib.report.notebook_results import load_result

    if model not in _MAIN_NOTEBOOK:
        raise CitysegError(f"no main run of model {model!r} (known: {', '.join(_MAIN_NOTEBOOK)})")
    return load_result(profile, _MAIN_NOTEBOOK[model]).main_run


def main_config(profile: str, model: str) -> TrainConfig:
    """The config of :func:`main_run`."""
    from cityseg_lib import runstore

    return runstore.load_config(main_run(profile, model))


def ablation_run(profile: str, model: str) -> str:
    """The ablation reference of ``model`` (``unet``, ``swin2_jnet``; :func:`ablation_runs`) read from its
    notebook's typed result: its main run when the profile has one recipe. What 05 and 06 build on."""
    from cityseg_lib.report.notebook_results import load_result, reference_run

    if model not in _MAIN_NOTEBOOK:
        raise CitysegError(f"no main run of model {model!r} (known: {', '.join(_MAIN_NOTEBOOK)})")
    return reference_run(load_result(profile, _MAIN_NOTEBOOK[model]))


def ablation_config(profile: str, model: str) -> TrainConfig:
    """The config of :func:`ablation_run`."""
    from cityseg_lib import runstore

    return runstore.load_config(ablation_run(profile, model))


def sweep_overrides(profile: str, data_root: str, main: TrainConfig | None, grid_keys: list[str] | tuple = ()) -> dict:
    """Overrides of a sweep config for notebook 06: the profile and data root and, from the model's
    ablation reference ``main`` (:func:`ablation_config`: the recipe its tuned run trains with), its :data:`SWEEP_SHARED_KEYS` and model options as ``base.KEY`` (except
    what the grid varies), so the sweep tunes the main model as it is trained."""
    out = {"profile": profile, "base.data_root": str(data_root)}
    if main is None:
        return out
    values = config_to_dict(main)
    out.update({f"base.{k}": values[k] for k in SWEEP_SHARED_KEYS if k not in grid_keys})
    if main.train_subset is not None:  # the sweep's pool: the images the tuned run trains on (sweep.config.BASE_POOL)
        out.update({"base.train_subset": main.train_subset, "subset_seed": main.subset_seed})
    out["base.model_options"] = {k: v for k, v in main.model_options.items() if f"model_options.{k}" not in grid_keys}
    return out


def _check_sweep_file(model, name) -> None:
    """One entry of notebook 06's ``sweep_files``: a model with a main run (the notebook tunes that
    run and labels its results by the model) and a file name in ``params/PROFILE/``."""
    from cityseg_lib.errors import CitysegError

    if model not in _MAIN_NOTEBOOK:
        raise CitysegError(f"sweep_files: {model!r} is not a model with a main run "
                           f"(valid: {', '.join(_MAIN_NOTEBOOK)})")
    if not isinstance(name, str) or not name.strip():
        raise CitysegError(f"sweep_files.{model}={name!r} must name a sweep params file in params/PROFILE/")


def sweep_configs(profile: str, data_root: str, sweep_files: dict[str, str], extra: dict | None,
                  mains: dict[str, TrainConfig]) -> dict[str, tuple[Path, dict]]:
    """06: ``{model: (params file, overrides)}`` of each sweep, checked by building its SweepConfig
    (:func:`cityseg_lib.sweep.load_sweep_config`); ``extra``: the notebook's ``sweep_overrides``;
    ``mains``: the ablation reference config of each model (:func:`ablation_config`)."""
    from cityseg_lib.paths import params_dir
    from cityseg_lib.sweep import load_sweep_config

    out = {}
    for model, name in sweep_files.items():
        _check_sweep_file(model, name)
        path = params_dir(profile) / name
        grid = load_sweep_config(path, {"profile": profile, **(extra or {})}).grid
        overrides = {**sweep_overrides(profile, data_root, mains.get(model), list(grid)), **(extra or {})}
        load_sweep_config(path, overrides)  # every key and value checked here, before any trial
        out[model] = (path, overrides)
    return out
