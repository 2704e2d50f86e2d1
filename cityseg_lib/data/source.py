"""Where a notebook's data comes from: ``data_root``, else ``$CITYSCAPES_DATASET``, else the
profile's generated demo data (settings in ``params/PROFILE/data.yaml``), made on first use."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write_json
from cityseg_lib.paths import params_dir, project_root, resolve_data_root
from cityseg_lib.strict import load_yaml

__all__ = ["DEMO_STAMP", "data_settings", "generation_args", "is_synthetic", "ensure_data", "generate_demo",
           "generator_settings"]

#: Marker written into a generated dataset root: its presence means "synthetic demo data".
DEMO_STAMP = "cityseg_demo_data.json"


def data_settings(profile: str) -> dict:
    """``params/PROFILE/data.yaml``: how the profile gets its data (generated demo data or not)."""
    path = params_dir(profile) / "data.yaml"
    settings = load_yaml(path)
    known = {"generate", "folder", "train", "val", "test", "train_extra", "size", "seed", "coarse", "description"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise CitysegError(f"{path}: unknown key {unknown[0]!r} (valid keys: {', '.join(sorted(known))})")
    if not isinstance(settings.get("generate", False), bool):  # 'no' in quotes would generate
        raise CitysegError(f"{path}: generate={settings['generate']!r}: expected true or false")
    if "folder" in settings:  # PROJECT/data/FOLDER: a path or '..' would generate the data outside data/
        from cityseg_lib.config import check_profile

        folder = settings["folder"]
        if not isinstance(folder, str):
            raise CitysegError(f"{path}: folder={folder!r}: expected a folder name under data/")
        check_profile(folder, f"{path}: folder")
    return settings


def is_synthetic(root: str | os.PathLike) -> bool:
    """True for a dataset made by the demo-data generator (not real Cityscapes)."""
    root = Path(root)
    if (root / DEMO_STAMP).is_file():
        return True
    readme = root / "README.txt"
    return readme.is_file() and readme.read_text(errors="replace").startswith("cityseg synthetic demo dataset")


def generation_args(profile: str, settings: dict | None = None) -> dict:
    """The generator's arguments from ``params/PROFILE/data.yaml`` (defaults filled in), checked:
    one line naming the file and the key at fault; a study needs at least one train and one val frame."""
    from cityseg_lib.data.demo import check_demo_args

    settings = data_settings(profile) if settings is None else settings
    args = {"train": settings.get("train", 80), "val": settings.get("val", 20), "test": settings.get("test", 4),
            "train_extra": settings.get("train_extra", 0), "size": settings.get("size", [1024, 512]),
            "seed": settings.get("seed", 0), "coarse": settings.get("coarse", True)}
    where = params_dir(profile) / "data.yaml"
    try:
        check_demo_args(**args)
    except CitysegError as err:
        raise CitysegError(f"{where}: {err}") from None
    for key in ("train", "val"):
        if args[key] < 1:
            raise CitysegError(f"{where}: {key}={args[key]}: the study needs at least one {key} frame")
    return {**{k: int(v) for k, v in args.items() if k not in ("size", "coarse")},
            "size": [int(args["size"][0]), int(args["size"][1])], "coarse": args["coarse"]}


def ensure_data(data_root: str = "", profile: str = "demo", progress: bool = False) -> Path:
    """The dataset root for a notebook: ``data_root``, else ``$CITYSCAPES_DATASET``, else demo data.

    Demo data (profiles whose ``data.yaml`` says ``generate: true``) is generated into
    ``PROJECT/data/FOLDER`` on first use and regenerated when its settings change; a folder
    without the generator's marker is never overwritten.
    """
    if data_root or os.environ.get("CITYSCAPES_DATASET"):
        root = resolve_data_root(data_root or None)
        if not root.is_dir():
            raise CitysegError(f"dataset root {root} does not exist (data_root / CITYSCAPES_DATASET)")
        return root
    settings = data_settings(profile)
    if not settings.get("generate", False):
        raise CitysegError(
            f"profile {profile!r} needs the real Cityscapes: set CITYSCAPES_DATASET (or data_root) to the folder "
            "holding leftImg8bit/ and gtFine/"
        )
    args = generation_args(profile, settings)
    root = project_root() / "data" / str(settings.get("folder", profile))
    stamp = root / DEMO_STAMP
    if stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("settings") == args:
                return root
        except json.JSONDecodeError:
            pass
    elif root.exists() and any(root.iterdir()) and not is_synthetic(root):
        raise CitysegError(f"{root} exists but was not made by the demo-data generator; move it or set data_root")
    generate_demo(root, args, workers=os.cpu_count() or 1, progress=progress)
    return root


def generate_demo(root: str | os.PathLike, args: dict, workers: int = 1, progress: bool = False) -> Path:
    """Generate demo data into ``root`` with ``args`` (:func:`generation_args`' form) and stamp it with
    them (:data:`DEMO_STAMP`), removing the old stamp first: whoever generates (``make report``'s
    :func:`ensure_data`, or ``cityseg make-demo-data`` into a profile's folder), the stamp names the
    settings of the frames that are there (a stale one had said seed 0 over frames of ``--seed 5``)."""
    from cityseg_lib.data.demo import make_demo_dataset

    root, t0 = Path(root), time.perf_counter()
    (root / DEMO_STAMP).unlink(missing_ok=True)
    make_demo_dataset(root, train=args["train"], val=args["val"], test=args["test"], train_extra=args["train_extra"],
                      size=tuple(args["size"]), seed=args["seed"], coarse=args["coarse"], workers=workers,
                      progress=progress)
    info = {"settings": args, "generator": "cityseg_lib.data.demo.make_demo_dataset", "synthetic": True,
            "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_json(root / DEMO_STAMP, info)
    from cityseg_lib.data.fingerprint import clear_cache
    clear_cache()  # frames rewritten in place keep their folders' times: fingerprint the new data afresh
    return root


def generator_settings(root: str | os.PathLike) -> dict | None:
    """Settings the demo data under ``root`` was generated with (None for real data)."""
    stamp = Path(root) / DEMO_STAMP
    if stamp.is_file():
        try:
            return json.loads(stamp.read_text()).get("settings")
        except json.JSONDecodeError:
            return None
    return None
