"""A timm ``features_only`` encoder with the weights asked for: a local checkpoint file, timm's
download (Hugging Face hub or URL, through their caches), or random weights.

Getting weights fails with one :class:`WeightsUnavailable` line that names the ways out (a local
file, network access, ``pretrained: false``). A checkpoint of another model is refused too: timm
loads non-strictly whenever it drops the classifier (always for ``features_only``), so the missing
and unexpected tensors it logs are collected and checked (a larger model of the same family, e.g.
a ``swinv2_small`` file for ``swinv2_tiny``, has every tensor the encoder needs, and more). timm is
imported here when an encoder is built, not with the package: a process that builds no Swin does
not pay the seconds its import takes.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from torch import nn

from cityseg_lib.errors import CitysegError, one_line

__all__ = ["create_encoder", "check_download", "WeightsUnavailable"]

class WeightsUnavailable(CitysegError):
    """The pretrained weights asked for cannot be had here (no such file, a file that does not load,
    no download): the settings' or the place's fault, not a property of a run (a sweep stops on it
    instead of recording its trials as failed for good, see ``sweep.run_trial``)."""


_NETWORK_MODULES = ("huggingface_hub", "requests", "urllib3", "httpx", "http", "urllib", "socket")


def _is_download_error(err: BaseException) -> bool:
    """Network/cache failures of timm's download: OSError (hub cache miss, URLError) or hub/HTTP errors."""
    return isinstance(err, OSError) or type(err).__module__.split(".")[0] in _NETWORK_MODULES


#: checkpoint tensors a ``features_only`` encoder has no place for, by design: the classifier and the
#: final norm after the last stage, and the size-bound buffers some layouts save (rebuilt for img_size)
_DROPPED = re.compile(r"^(head|norm|fc_norm)\.|(^|\.)(relative_position_index|relative_coords_table|attn_mask)$")


@contextmanager
def _load_report() -> Iterator[dict[str, list[str]]]:
    """Collect the tensor names timm reports missing or unexpected while it loads pretrained weights.

    timm loads non-strictly whenever it drops the classifier (always for ``features_only``), so a
    checkpoint of another model would load without an error; its only traces are the "Missing keys
    (a, b) discovered ..." INFO and "Unexpected keys (c) found ..." WARNING records of
    ``timm.models._builder`` (kept from the terminal here: what they mean is raised instead).
    """
    found: dict[str, list[str]] = {"missing": [], "unexpected": []}

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            match = re.match(r"(Missing|Unexpected) keys \((.*)\) (discovered|found)", record.getMessage())
            if match:
                found[match.group(1).lower()].extend(k.strip() for k in match.group(2).split(","))

    logger = logging.getLogger("timm.models._builder")
    handler, old_level, old_propagate = _Handler(logging.INFO), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # timm's load records are this check's, not the user's log (e.g. a Ray worker's)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def _listed(keys: list[str]) -> str:
    return f"{', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"


def _load_local(name: str, kwargs: dict[str, Any], path: Path, who: str) -> nn.Module:
    """The encoder with weights from a local checkpoint of the timm model ``name``."""
    import timm
    from timm.models import get_pretrained_cfg
    if path.is_dir():
        raise WeightsUnavailable(f"{who}: weights file {path} is a folder; name the checkpoint file in it "
                                 "(e.g. model.safetensors)")
    if not path.is_file():
        raise WeightsUnavailable(f"{who}: weights file {path} does not exist")
    try:
        with _load_report() as found:
            model = timm.create_model(
                name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), features_only=True, **kwargs
            )
    except TypeError:
        raise
    except Exception as err:  # unreadable file, or tensors of the wrong shapes
        why = one_line(err)
        if "weights_only" in why:  # torch's advice (weights_only=False) is not the user's to take here
            why = ("not a checkpoint of tensors alone (torch.load with weights_only=True refuses it; "
                   "a safetensors file must be named *.safetensors)")
        elif "size mismatch" in why and kwargs:
            why = (f"encoder_kwargs {kwargs} change the architecture the checkpoint was made for (timm's {name!r}): "
                   f"{one_line(err, 160)}")
        raise WeightsUnavailable(f"{who}: weights file {path} does not load into encoder {name!r}: {why}") from err
    cfg = get_pretrained_cfg(name)
    heads = cfg.classifier if cfg is not None and cfg.classifier else "head"
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    missing = [k for k in found["missing"] if not k.startswith(tuple(f"{h}." for h in heads))]  # dropped anyway
    unexpected = [k for k in found["unexpected"] if not _DROPPED.search(k)]
    if missing:
        hint = ""
        if len(missing) >= sum(1 for _ in model.parameters()):  # nothing matched: names under a wrapper's prefix?
            first = next(iter(found["unexpected"]), None)
            hint = f"; none of its names matches (its first: {first!r}): another model, or a prefix?" if first else ""
        raise WeightsUnavailable(f"{who}: weights file {path} does not load into encoder {name!r}: "
                                 f"{len(missing)} tensors missing ({_listed(missing)}){hint}")
    if unexpected:
        raise WeightsUnavailable(f"{who}: weights file {path} does not load into encoder {name!r}: it holds "
                                 f"{len(unexpected)} tensors the encoder does not have ({_listed(unexpected)}): "
                                 "a checkpoint of a larger model?")
    return model


def _pretrained_cfg(name: str, who: str):
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise WeightsUnavailable(
            f"{who}: timm knows no pretrained weights for encoder {name!r}; "
            "set weights: PATH to a local checkpoint, or pretrained: false"
        )
    return cfg


def _unavailable(name: str, cfg, why: str, who: str) -> WeightsUnavailable:
    source = f"https://huggingface.co/{cfg.hf_hub_id}" if cfg.hf_hub_id else cfg.url
    return WeightsUnavailable(
        f"{who}: cannot get pretrained weights for encoder {name!r} ({why}); "
        f"either set weights: PATH to a local copy of the checkpoint ({source}), or get internet "
        "access (with HF_HUB_OFFLINE unset or 0) or a populated Hugging Face cache (HF_HOME); "
        "pretrained: false starts from random weights"
    )


def _offline() -> bool:
    import os

    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def _cached(cfg) -> bool:
    """Whether timm's download of ``cfg`` (a pretrained cfg) would find its file without the network:
    in the Hugging Face cache (the hub's file names timm tries) or torch hub's checkpoint folder (a URL)."""
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = cfg.hf_hub_id.split("@")[0]
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str) and Path(found).is_file():
                return True
    if cfg.url:
        import torch

        if (Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name).is_file():
            return True
    return bool(cfg.file) and Path(cfg.file).expanduser().is_file()


def check_download(name: str, who: str) -> None:
    """Refuse, where a config enters (nothing built, no network), a pretrained encoder without a
    ``weights`` file whose download cannot happen: the hub is offline (``HF_HUB_OFFLINE``) and
    neither its cache nor torch hub's holds the checkpoint. The same one line as a failed download,
    before a run folder, the data or the other notebooks are touched. Online, the download is
    tried when the model is built (a check would wait on the network)."""
    cfg = _pretrained_cfg(name, who)
    if _offline() and not _cached(cfg):
        raise _unavailable(name, cfg, "HF_HUB_OFFLINE is set and the checkpoint is in no cache", who)


def _download(name: str, kwargs: dict[str, Any], who: str) -> nn.Module:
    """The encoder with timm's pretrained weights (Hugging Face hub or URL, through their caches)."""
    import timm

    cfg = _pretrained_cfg(name, who)
    try:
        return timm.create_model(name, pretrained=True, features_only=True, **kwargs)
    except Exception as err:
        if not _is_download_error(err):
            raise
        raise _unavailable(name, cfg, type(err).__name__, who) from err


def create_encoder(name: str, kwargs: dict[str, Any], pretrained: bool, weights: str | Path | None,
                   who: str) -> nn.Module:
    """``timm.create_model(name, features_only=True, **kwargs)`` with the weights asked for; ``who``
    (the model being built) starts every error message."""
    import timm
    try:
        if weights:
            return _load_local(name, kwargs, Path(weights).expanduser(), who)
        if pretrained:
            return _download(name, kwargs, who)
        return timm.create_model(name, pretrained=False, features_only=True, **kwargs)
    except TypeError as err:  # timm passes unknown keyword arguments on to the model class
        raise CitysegError(f"{who}: encoder {name!r} rejects its arguments {sorted(kwargs)}: {one_line(err)}") from err
