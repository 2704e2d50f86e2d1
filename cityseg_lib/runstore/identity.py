"""A run's identity: the config keys that decide what it computes (a Swin weights file by its
content digest), the dataset's content fingerprint, and the folder name ``NAME-HASH`` they give."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.strict import config_to_dict

#: TrainConfig keys that do not change what a run computes: where and how fast it runs, what it
#: is called, where its files go, and how many epochs (a larger number extends the same run).
#: The one list used by reuse, resume and the sweep. ``num_workers`` is one: augmentation draws
#: from a generator of (seed, epoch, sample), not from a worker's. What changes results in
#: round-off but is no config key (torch threads on CPU, the device type) is recorded in
#: ``last.pt``, and a resume with other values is refused (:class:`ResumeRefused`); a DDP world
#: size above 1 changes the batch (``batch_size`` is per process) and enters the identity.
EXECUTION_KEYS = frozenset({"name", "profile", "runs_dir", "data_root", "cache", "cache_dir", "num_workers",
                            "progress", "compile", "device", "epochs"})

#: TrainConfig keys added after runs were first identified, each with the value that computes what
#: runs trained before the key existed did: such a key enters the identity only at another value,
#: so a newer version's key keeps every earlier run's folder (a study of GPU hours is reused, not
#: trained again beside itself). A new computed key goes here with that value, fixed for good (a
#: later change of the dataclass default does not change it), or it changes every identity
#: (tests/test_upgrades.py pins the hashed keys). ``crop_size`` and ``crop_class_balance`` (added
#: two hours after the run store, 2026-12-01) predate this rule and are hashed at every value:
#: listing them now would move every run trained since. A DDP world size of 1 is left out the same way.
ADDED_KEYS: dict[str, object] = {
    # 2026-12-05: masks resized at pixel centres (nearest-exact) instead of top-left corners, which put
    # every training label half a training pixel off its image (cityseg_lib/data/transforms.py)
    "mask_resize": "nearest",
    # 2026-12-05: bf16 autocast on the CPU (cpu_bf16 on, or auto where the CPU has AMX tiles); every
    # earlier CPU run trained in float32
    "cpu_bf16": "off",
}

class ResumeRefused(CitysegError):
    """An unfinished run cannot continue *here* as it started (another torch thread count on CPU,
    another DDP world size): the caller's settings to fix, not a property of the run (a sweep stops
    on it instead of recording the trial as failed)."""


_WEIGHTS_DIGESTS: dict[tuple, str] = {}


def weights_digest(path: str | os.PathLike) -> str:
    """``sha256:HEX`` of a weights file's content, cached per process on (path, inode, size, mtime):
    a checkpoint of hundreds of MB is read once. A missing file is one line naming it."""
    from cityseg_lib.models.timm_weights import WeightsUnavailable

    path = Path(path).expanduser().resolve()
    try:
        st = path.stat()
    except OSError:
        raise WeightsUnavailable(f"weights file {path} does not exist (model_options.weights)") from None
    if not path.is_file():
        raise WeightsUnavailable(f"weights file {path} is a folder; name the checkpoint file in it "
                                 "(e.g. model.safetensors) (model_options.weights)")
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _WEIGHTS_DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
        _WEIGHTS_DIGESTS[key] = f"sha256:{digest.hexdigest()}"
    return _WEIGHTS_DIGESTS[key]


def identify_weights(model_options: dict) -> dict:
    """``model_options`` with a ``weights`` file named by its content (:func:`weights_digest`), not its
    path: the same checkpoint moved, copied or named relatively is the same run, and another file
    saved over the same path is another run (as the dataset enters by its content fingerprint)."""
    if not model_options.get("weights"):
        return model_options
    return {**model_options, "weights": weights_digest(model_options["weights"])}


def computed_config(cfg: TrainConfig) -> dict:
    """The config keys that decide what ``cfg`` computes (everything but :data:`EXECUTION_KEYS`,
    and an :data:`ADDED_KEYS` key at its earlier behaviour), a weights file by its content
    (:func:`identify_weights`)."""
    values = {k: v for k, v in config_to_dict(cfg).items()
              if k not in EXECUTION_KEYS and not (k in ADDED_KEYS and v == ADDED_KEYS[k])}
    values["model_options"] = identify_weights(values["model_options"])
    if revision := training_revision(cfg):  # a model whose arithmetic a later version changed
        values["model_revision"] = revision
    world = _world_size()
    if world > 1:  # under torchrun: batch_size is per process, so N processes train another batch
        values["world_size"] = world
    return values


def training_revision(cfg: TrainConfig) -> int | None:
    """The revision of ``cfg``'s model computation at its training size (None: what it always was,
    the case of every run trained before model revisions existed), :func:`~cityseg_lib.models.model_revision`."""
    from cityseg_lib.models import model_revision

    return model_revision(cfg.model, cfg.model_options, cfg.crop_size or cfg.image_size)


def _world_size() -> int:
    """The DDP world size torchrun announces (``WORLD_SIZE``), read from the environment: the run
    folder is named before the process group starts (``cityseg train`` vets it first)."""
    try:
        return max(int(os.environ.get("WORLD_SIZE", "1") or 1), 1)
    except ValueError:
        raise CitysegError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a process count") from None


def dataset_fingerprint(cfg: TrainConfig) -> dict:
    """Content identity of the data ``cfg`` trains (``cfg.annotation``) and validates (fine) on."""
    from cityseg_lib.data.fingerprint import fingerprint
    from cityseg_lib.paths import resolve_data_root

    return fingerprint(resolve_data_root(cfg.data_root), ((cfg.train_split, cfg.annotation), (cfg.val_split, "fine")))


def run_id(cfg: TrainConfig) -> str:
    """Eight hex digits of what ``cfg`` computes (computed keys and dataset fingerprint)."""
    identity = {"config": computed_config(cfg), "dataset": dataset_fingerprint(cfg)["digest"]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


def runs_root(cfg: TrainConfig) -> Path:
    from cityseg_lib.paths import runs_dir

    return (Path(cfg.runs_dir).expanduser() if cfg.runs_dir else runs_dir()).resolve()


def check_subset(cfg: TrainConfig) -> None:
    """Refuse a ``train_subset`` count larger than the training split (one line; the split is listed
    for the fingerprint anyway): it would train on all of it under another run's hash."""
    subset = cfg.train_subset
    if isinstance(subset, bool) or not isinstance(subset, int):
        return
    held = dataset_fingerprint(cfg).get("images", {}).get(f"{cfg.train_split}/{cfg.annotation}")
    if held is not None and subset > held:
        raise CitysegError(f"train_subset={subset}: the {cfg.train_split} split ({cfg.annotation} labels) holds "
                           f"only {held} images; give a count up to {held}, a fraction in (0, 1], or none for all")


def smallest_batch(cfg: TrainConfig, world: int | None = None) -> int | None:
    """The fewest images a training batch of ``cfg`` holds, as ``train.engine._loaders`` batches
    (None when the training split is not found): each process trains its share of the training set
    (after ``train_subset``; a ``1 / world`` share under DDP, ``world``: ``$WORLD_SIZE``, whose
    ``batch_size`` is per process), ``batch_size`` at a time when the share is larger, the last,
    partial batch dropped; else the whole share in one batch. A model checks it (BatchNorm needs
    two values per channel, ``check_model``). Fewer images than processes are refused (one line):
    each process's share would be empty, and every epoch would pass without a step."""
    from cityseg_lib.data.dataset import subset_indices

    held = dataset_fingerprint(cfg).get("images", {}).get(f"{cfg.train_split}/{cfg.annotation}")
    if not held:
        return None
    n = len(subset_indices(held, cfg.train_subset, cfg.subset_seed))
    world = world or int(os.environ.get("WORLD_SIZE", "1"))
    share = n // world if world > 1 else n  # DistributedSampler(drop_last=True) gives each process n // world
    if share == 0:
        subset = f", train_subset={cfg.train_subset}" if cfg.train_subset else ""
        raise CitysegError(f"{world} DDP processes need at least {world} training images (one each), but the "
                           f"{cfg.train_split} split ({cfg.annotation} labels{subset}) gives {n}: run on at most "
                           f"{n} process(es) (torchrun --nproc-per-node), or train on more images")
    return cfg.batch_size if share > cfg.batch_size else max(share, 1)


def run_dir(cfg: TrainConfig) -> Path:
    """``RUNS/PROFILE/NAME-HASH``: the folder of the run ``cfg`` describes (a ``train_subset``
    larger than the training split is refused here, before any folder, :func:`check_subset`)."""
    check_subset(cfg)
    return runs_root(cfg) / cfg.profile / f"{cfg.name}-{run_id(cfg)}"


def find_runs(cfg: TrainConfig) -> list[Path]:
    """Run folders of ``cfg.name`` (any hash) in its profile, newest first."""
    parent = (runs_root(cfg) / cfg.profile / cfg.name).parent
    stem = Path(cfg.name).name
    found = [p for p in parent.glob(f"{stem}-*") if (p / "config.yaml").is_file() and len(p.name) == len(stem) + 9]
    return sorted(found, key=lambda p: (p / "config.yaml").stat().st_mtime, reverse=True)


def _any_path(model_options: dict) -> dict:
    return {**model_options, "weights": bool(model_options.get("weights"))}


def check_same_computation(saved: dict, cfg: TrainConfig, where: str | os.PathLike) -> None:
    """Refuse (one line naming the key) when ``saved`` (a config dict) computes something else."""
    now = config_to_dict(cfg)
    for key in sorted(set(saved) | set(now)):
        if key in EXECUTION_KEYS:
            continue
        if key == "model_options" and isinstance(saved.get(key), dict) and _any_path(saved[key]) == _any_path(now[key]):
            continue  # the weights file's path may differ: the run folder was found by the file's content
        if key not in now:
            raise CitysegError(f"{where}: incompatible run: it has config key {key!r} this version does not know")
        if key not in saved and key not in ADDED_KEYS:  # a computed key added without its earlier value
            raise CitysegError(f"{where}: cannot resume: that run was trained by an older version, before config key "
                               f"{key} (now {now[key]!r}) entered a run's identity; it is kept as it is: train without "
                               "--resume for a run of this version beside it")
        before = saved.get(key, ADDED_KEYS.get(key))
        if before != now[key]:
            raise CitysegError(f"{where}: cannot resume: {key} was {before!r} in that run, now {now[key]!r}")
