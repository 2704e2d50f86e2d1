"""The pretrained Swin weights a report's runs ask for, checked before the first notebook starts:
a local ``weights`` file that loads into the run's encoder, or the Hugging Face hub (its cache with
``HF_HUB_OFFLINE=1``, else a reachable hub). Each failure is one line naming the run and the ways out."""

from __future__ import annotations

import os
from pathlib import Path

from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError

__all__ = ["check_weights"]

_HF_ENV = "HF_HUB_OFFLINE"


def check_weights(cfg: TrainConfig, where: str) -> None:
    """A Swin2-JNet run with ``pretrained`` needs a readable ``weights`` file or the hub (or its cache)."""
    from cityseg_lib.models.registry import model_options

    if cfg.model != "swin2_jnet":
        return
    options = {**model_options("swin2_jnet"), **cfg.model_options}
    if not options.get("pretrained"):
        return
    weights = options.get("weights")
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file() or not os.access(path, os.R_OK):
            raise CitysegError(f"{where}: weights file {path} is missing or unreadable (model_options.weights of "
                               f"run {cfg.name})")
        _check_loads(cfg, path, where)
        return
    encoder = options["encoder"]
    repo, filename = _hub_file(encoder)
    ways = (f"set weights: /path/to/{filename} (a local copy of https://huggingface.co/{repo}) in the params file, "
            f"or allow the download with {_HF_ENV}=0")
    if os.environ.get(_HF_ENV, "").lower() in ("1", "true", "yes", "on"):
        if not _cached(repo, filename):
            raise CitysegError(f"{where}: run {cfg.name} needs the pretrained weights of {encoder}, but {_HF_ENV}=1 "
                               f"and they are not in the Hugging Face cache: {ways}")
        return
    if not _cached(repo, filename) and not _reachable(repo, filename):
        raise CitysegError(f"{where}: run {cfg.name} needs the pretrained weights of {encoder}, and the Hugging Face "
                           f"hub is not reachable: {ways.replace(f', or allow the download with {_HF_ENV}=0', '')}"
                           ", or get internet access")


_LOADED: set[tuple] = set()


def _check_loads(cfg: TrainConfig, path: Path, where: str) -> None:
    """Build the run's model with its weights file, as its notebook will (a few seconds, once per
    file, encoder and size): a file of another model fails here, not after the notebooks before."""
    import json

    from cityseg_lib.train.engine import build_model_for

    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, json.dumps(cfg.model_options, sort_keys=True, default=str),
           tuple(cfg.image_size))
    if key in _LOADED:
        return
    try:
        build_model_for(cfg)
    except CitysegError as err:
        raise CitysegError(f"{where}: run {cfg.name}: {err}") from None
    _LOADED.add(key)


def _hub_file(encoder: str) -> tuple[str, str]:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(encoder)
    if cfg is None or not cfg.hf_hub_id:
        raise CitysegError(f"timm knows no Hugging Face weights for encoder {encoder!r}; set weights: PATH to a local "
                           "checkpoint, or pretrained: false")
    return cfg.hf_hub_id.split("@")[0], "model.safetensors"


def _cached(repo: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    return isinstance(found, str) and Path(found).is_file()


def _reachable(repo: str, filename: str) -> bool:
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        get_hf_file_metadata(hf_hub_url(repo, filename), timeout=10)
        return True
    except Exception:  # offline, DNS, proxy, HTTP error: all mean "cannot download now"
        return False
