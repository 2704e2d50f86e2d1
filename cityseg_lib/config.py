"""The training config: one typed, strict dataclass whose every key is checked where it is built.

Defaults follow the reference report where it gives a value (768x768, AdamW, StepLR every 10
epochs, 20 epochs); lr, weight decay and gamma, which it leaves to its sweep, are values of its
Table 1 grid, and the batch of 8 (it gives none) a choice. Params YAML and ``key=value``
overrides are merged over them strictly (:mod:`cityseg_lib.strict`: unknown keys, wrong types and out-of-range values are
one-line errors naming the key, value and allowed range). The resolved config is written next to
every run by :mod:`cityseg_lib.runstore`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from cityseg_lib.strict import at_least, between, from_dict, load_yaml, one_of, parse_overrides

__all__ = ["TrainConfig", "load_config", "train_config", "check_device", "check_profile", "absolute_paths", "PATH_KEYS",
           "OPTIMIZER_NAMES", "LOSS_NAMES", "AUGMENT_NAMES", "CPU_BF16_VALUES", "MAX_SEED", "MAX_WORKERS"]

T = TypeVar("T")

OPTIMIZER_NAMES = ("adamw", "adam", "adamax")
LOSS_NAMES = ("cross_entropy", "iou", "dice")
AUGMENT_NAMES = ("none", "replace", "augment")
CPU_BF16_VALUES = ("off", "on", "auto")


#: The largest seed: ``np.random.seed`` (seeded with the run's seed at the start of training) takes
#: 0 .. 2**32 - 1 and fails on more, after the run folder is made.
MAX_SEED = 2**32 - 1
#: The most DataLoader worker processes: more than any one machine's cores; an extra digit or a
#: huge number would fork processes until the machine gives out, after the run folder is made.
MAX_WORKERS = 256


def check_profile(value: str, key: str = "profile") -> str:
    """``value`` when it is one folder name (the runs of a profile live in ``RUNS_DIR/PROFILE``), else one
    line naming ``key``: an empty profile would put runs beside the profile folders, and ``..`` or a
    path (``/tmp/x``, ``a/b``) would put them outside ``runs_dir``, where the report and tensorboard
    never look."""
    if not value or value.strip() != value or value in (".", "..") or "/" in value or "\\" in value:
        from cityseg_lib.errors import CitysegError

        raise CitysegError(f"{key}={value!r} must be one plain folder name (demo, full, smoke...), "
                           "not empty, a path or '..'")
    return value


def check_device(value, key: str = "device") -> str:
    """``value`` when it is a device name a run takes (auto, cpu, cuda, cuda:N), else one line naming ``key``."""
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        from cityseg_lib.errors import CitysegError

        raise CitysegError(f"{key}={value!r} must be auto, cpu, cuda or cuda:N")
    return value


@dataclass
class TrainConfig:
    """Everything that defines one training run. Defaults: the reference report's settings (module docstring)."""

    # --- run ---
    name: str = "run"  # run folder: RUNS_DIR/PROFILE/NAME
    profile: str = "demo"  # params profile this run belongs to (demo, full, smoke)
    runs_dir: str = ""  # "" -> PROJECT/runs
    seed: int = 0  # seeds weights, shuffling, augmentation and dropout (per epoch, so resume is exact)
    # --- data ---
    data_root: str = ""  # "" -> $CITYSCAPES_DATASET
    image_size: tuple[int, int] = (768, 768)  # (H, W) training size; the report resizes to 768x768
    annotation: str = "fine"  # fine | coarse labels for training
    train_split: str = "train"
    val_split: str = "val"
    train_subset: float | int | None = None  # fraction (0, 1] or count of training images; None = all
    subset_seed: int = 0  # seed of the (nested) subset draw
    max_val_images: int = 0  # 0 = the whole validation split
    augment: str = "none"  # none | replace | augment (Section 3.1)
    hflip_p: float = 0.5  # horizontal flip probability when augmenting
    crop_scale: tuple[float, float] = (0.5, 1.0)  # RandomResizedCrop area range when augmenting
    crop_size: tuple[int, int] | None = None  # (H, W) random training crop of the image_size sample; None = whole
    crop_class_balance: float = 0.0  # share of crops centred on a pixel of a class drawn uniformly from the sample
    mask_resize: str = "nearest-exact"  # masks resized at pixel centres, aligned with the image | nearest (before 2026-12-05)
    cache: bool = True  # preprocessed-sample cache (decode each PNG once)
    cache_dir: str = ""  # "" -> $CITYSEG_CACHE or PROJECT/data/cache
    num_workers: int = -1  # DataLoader workers; -1 = min(cpus, 8) on CUDA, 0 on CPU
    # --- model ---
    model: str = "unet"  # simple_fcn | unet | swin2_jnet
    model_options: dict = field(default_factory=dict)  # passed to build_model (width, depth, dropout, ...)
    # --- optimisation ---
    loss: str = "cross_entropy"  # cross_entropy | iou | dice
    optimizer: str = "adamw"  # adamw | adam | adamax (Section 3.3 compares them)
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3  # initial learning rate
    weight_decay: float = 1e-4  # AdamW: decoupled L2; Adam/Adamax: L2 added to the gradient
    step_size: int = 10  # StepLR: decay every step_size epochs
    gamma: float = 0.1  # StepLR factor (1 = constant learning rate)
    patience: int = 0  # stop after this many epochs without a lower val loss; 0 = never
    # --- execution ---
    device: str = "auto"  # auto (CUDA if present) | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU: see cpu_bf16)
    channels_last: bool = True  # NHWC memory format on CUDA (ignored on CPU: see cpu_bf16)
    # bf16 autocast + channels_last on the CPU: off | on | auto (on where the CPU has AMX tiles); ignored
    # on CUDA. Measured per training step (1 thread, 64x128, batch 4): 1.96x faster than fp32 for a U-Net
    # on a Xeon with AMX (SimpleFCN 1.65x, Swin V2 1.44x; a 26-epoch U-Net scored as fp32 did), only
    # 1.28x on AVX-512-BF16 without AMX, and 2-33x slower on AVX2-only CPUs (bf16 emulated). YAML's
    # unquoted on/off (booleans) read as "on"/"off". A resumed run keeps the precision it began with.
    cpu_bf16: str | bool = "off"
    compile: bool = False  # torch.compile the model
    full_res_eval: bool = True  # final evaluation also at the original label resolution (official protocol)
    max_batches: int = 0  # cap on training batches per epoch (smoke tests); 0 = all
    progress: bool | str = "auto"  # tqdm bars: auto (a terminal or notebook a person runs; not CI/papermill) | true | false

    #: Allowed values of the numeric and enumerated keys (checked by ``from_dict`` on every build).
    RANGES: ClassVar[dict] = {
        "seed": between(0, MAX_SEED), "subset_seed": at_least(0), "max_val_images": at_least(0),
        "image_size": at_least(1), "hflip_p": between(0.0, 1.0), "crop_scale": between(0.0, 1.0),
        "crop_size": at_least(1), "crop_class_balance": between(0.0, 1.0),
        "num_workers": between(-1, MAX_WORKERS), "epochs": at_least(1), "batch_size": at_least(1),
        "lr": at_least(0.0, strict=True),
        "weight_decay": at_least(0.0), "step_size": at_least(1), "gamma": between(0.0, 1.0), "patience": at_least(0),
        "max_batches": at_least(0), "annotation": one_of("fine", "coarse"), "augment": one_of(*AUGMENT_NAMES),
        "mask_resize": one_of("nearest-exact", "nearest"),
        "loss": one_of(*LOSS_NAMES), "optimizer": one_of(*OPTIMIZER_NAMES), "progress": one_of("auto", True, False),
        "cpu_bf16": one_of(*CPU_BF16_VALUES),
    }

    def __post_init__(self) -> None:
        from cityseg_lib.errors import CitysegError

        if isinstance(self.cpu_bf16, bool):  # YAML 1.1 reads an unquoted on/off (also true/false) as a bool
            self.cpu_bf16 = "on" if self.cpu_bf16 else "off"
        if self.crop_scale[0] > self.crop_scale[1] or self.crop_scale[0] <= 0:
            raise CitysegError(f"crop_scale={list(self.crop_scale)} must be [low, high] with 0 < low <= high <= 1")
        if self.crop_size is not None and any(c > s for c, s in zip(self.crop_size, self.image_size)):
            raise CitysegError(f"crop_size={list(self.crop_size)} must fit in image_size={list(self.image_size)} "
                               "(crops are cut from the image_size sample)")
        if self.crop_size is not None and tuple(self.crop_size) != tuple(self.image_size) and self.model == "swin2_jnet":
            # its Swin V2 encoder is built for one input size: crops would be magnified to image_size in
            # training and the validation images not, two scales
            raise CitysegError(f"crop_size={list(self.crop_size)} with model swin2_jnet: its encoder takes one input "
                               f"size, image_size={list(self.image_size)}; leave crop_size unset for this model")
        if isinstance(self.train_subset, float) and not 0.0 < self.train_subset <= 1.0:
            raise CitysegError(f"train_subset={self.train_subset} is out of range (a fraction in (0, 1] or a count >= 1)")
        if isinstance(self.train_subset, int) and self.train_subset < 1:
            raise CitysegError(f"train_subset={self.train_subset} is out of range (a fraction in (0, 1] or a count >= 1)")
        check_device(self.device)
        check_profile(self.profile)
        for key in ("train_split", "val_split"):
            if getattr(self, key) == "test":
                raise CitysegError(f"{key}='test': Cityscapes withholds the test split's labels (they are all void "
                                   "in the release), so nothing can be learnt or scored on it; use 'val'")
        if not self.name or self.name.startswith("/") or ".." in self.name.split("/"):
            raise CitysegError(f"name={self.name!r} must be a relative folder name")


def load_config(params: str | os.PathLike | list | tuple | None = None, overrides: list[str] | dict | None = None,
                cls: type[T] = TrainConfig) -> T:
    """Defaults <- ``params`` YAML file (or files, each over the one before) <- overrides (``key=value``
    strings or a dict)."""
    cfg = cls()
    for path in ([] if params is None else list(params) if isinstance(params, (list, tuple)) else [params]):
        cfg = from_dict(cls, load_yaml(path), source=str(path), base=cfg)
    if overrides:
        values = overrides if isinstance(overrides, dict) else parse_overrides(list(overrides))
        cfg = from_dict(cls, values, source="override", base=cfg)
    return cfg


#: The profile file of the main runs' recipe (:func:`train_config` with ``main=True``).
MAIN_RECIPE_FILE = "main.yaml"


def train_config(profile: str, name: str, train: dict | None = None, main: bool = False, **params) -> TrainConfig:
    """The config of a notebook's run ``NAME`` in ``PROFILE``, each value written once:

    defaults <- ``params/PROFILE/train.yaml`` (the profile's shared training block, when present)
    [<- ``params/PROFILE/main.yaml`` for a *main* run (``main``: the architectures' runs of notebooks
    02-04 and their seeds), when present] <- ``train`` (the notebook's ``train`` parameter) <- ``params``
    (what the notebook fixes for this run: model, loss, seed...). ``main.yaml`` is how a profile trains its
    main runs longer than the ablations (the demo: the architecture comparison on a 2-core budget);
    without it every run shares one recipe. Progress bars follow ``progress: auto``: live in a cell a
    person runs, off when papermill executes the notebook. Errors name the file or parameter and the key.
    """
    from pathlib import Path

    from cityseg_lib.paths import params_dir

    cfg = TrainConfig()
    files = [params_dir(profile) / "train.yaml"] + ([params_dir(profile) / MAIN_RECIPE_FILE] if main else [])
    for shared in files:
        if shared.is_file():
            cfg = from_dict(TrainConfig, load_yaml(shared), source=str(shared), base=cfg)
    if train:
        cfg = from_dict(TrainConfig, dict(train), source=f"{name}: train parameter", base=cfg)
    values = {k: str(v) if isinstance(v, Path) else v for k, v in params.items()}
    return from_dict(TrainConfig, {**values, "profile": profile, "name": name}, source=f"run {profile}/{name}", base=cfg)


#: TrainConfig keys (and model options) that are file-system paths.
PATH_KEYS = ("data_root", "runs_dir", "cache_dir")


def absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its relative paths (``data_root``, ``runs_dir``, ``cache_dir`` and a Swin
    ``weights`` file) made absolute against this process's working directory: what a run handed to
    another process must carry (a Ray worker resolves paths against its own directory, the one ``ray
    start`` ran in). None of them changes the run's folder: the first three are not part of a run's
    identity, and a weights file enters it by its content."""
    from dataclasses import replace
    from pathlib import Path

    def absolute(value: str) -> str:
        return str(Path(value).expanduser().resolve()) if value and not Path(value).is_absolute() else value

    changes = {k: absolute(getattr(cfg, k)) for k in PATH_KEYS if absolute(getattr(cfg, k)) != getattr(cfg, k)}
    weights = cfg.model_options.get("weights")
    if isinstance(weights, str) and absolute(weights) != weights:
        changes["model_options"] = {**cfg.model_options, "weights": absolute(weights)}
    return replace(cfg, **changes) if changes else cfg
