"""A timm ``features_only`` encoder with the weights asked for: a local checkpoint file, timm's
download (Hugging Face hub or URL, through their caches), or random weights.

Getting weights fails with one :class:`CitysegError` that names the ways out (a local file, network
access, ``pretrained: false``). A checkpoint of another model is refused too: timm loads
non-strictly whenever it drops the classifier (always for ``features_only``), so the missing
tensors it logs are collected and checked. timm is imported here when an encoder is built, not
with the package: a process that builds no Swin does not pay the seconds its import takes.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from torch import nn

from cityseg_lib.errors import CitysegError, one_line

__all__ = ["create_encoder"]

_NETWORK_MODULES = ("huggingface_hub", "requests", "urllib3", "httpx", "http", "urllib", "socket")


def _is_download_error(err: BaseException) -> bool:
    """Network/cache failures of timm's download: OSError (hub cache miss, URLError) or hub/HTTP errors."""
    return isinstance(err, OSError) or type(err).__module__.split(".")[0] in _NETWORK_MODULES


@contextmanager
def _missing_keys_report() -> Iterator[list[str]]:
    """Collect the parameter names timm reports missing while it loads pretrained weights.

    timm loads non-strictly whenever it drops the classifier (always for ``features_only``), so a
    checkpoint of another model would load nothing without an error; its only trace is the
    "Missing keys (a, b) discovered ..." INFO record of ``timm.models._builder``.
    """
    missing: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            match = re.match(r"Missing keys \((.*)\) discovered", record.getMessage())
            if match:
                missing.extend(k.strip() for k in match.group(1).split(","))

    logger = logging.getLogger("timm.models._builder")
    handler, old_level = _Handler(logging.INFO), logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield missing
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _load_local(name: str, kwargs: dict[str, Any], path: Path, who: str) -> nn.Module:
    """The encoder with weights from a local checkpoint of the timm model ``name``."""
    import timm
    from timm.models import get_pretrained_cfg
    if not path.is_file():
        raise CitysegError(f"{who}: weights file {path} does not exist")
    try:
        with _missing_keys_report() as missing:
            model = timm.create_model(
                name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), features_only=True, **kwargs
            )
    except TypeError:
        raise
    except Exception as err:  # unreadable file, or tensors of the wrong shapes
        raise CitysegError(f"{who}: weights file {path} does not load into encoder {name!r}: {one_line(err)}") from err
    cfg = get_pretrained_cfg(name)
    heads = cfg.classifier if cfg is not None and cfg.classifier else "head"
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    missing = [k for k in missing if not k.startswith(tuple(f"{h}." for h in heads))]  # the head is dropped anyway
    if missing:
        more = ", ..." if len(missing) > 3 else ""
        raise CitysegError(
            f"{who}: weights file {path} does not load into encoder {name!r}: "
            f"{len(missing)} tensors missing ({', '.join(missing[:3])}{more})"
        )
    return model


def _download(name: str, kwargs: dict[str, Any], who: str) -> nn.Module:
    """The encoder with timm's pretrained weights (Hugging Face hub or URL, through their caches)."""
    import timm
    from timm.models import get_pretrained_cfg
    cfg = get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise CitysegError(
            f"{who}: timm knows no pretrained weights for encoder {name!r}; "
            "set weights: PATH to a local checkpoint, or pretrained: false"
        )
    try:
        return timm.create_model(name, pretrained=True, features_only=True, **kwargs)
    except Exception as err:
        if not _is_download_error(err):
            raise
        source = f"https://huggingface.co/{cfg.hf_hub_id}" if cfg.hf_hub_id else cfg.url
        raise CitysegError(
            f"{who}: cannot get pretrained weights for encoder {name!r} ({type(err).__name__}); "
            f"either set weights: PATH to a local copy of the checkpoint ({source}), or get internet "
            "access (with HF_HUB_OFFLINE unset or 0) or a populated Hugging Face cache (HF_HOME); "
            "pretrained: false starts from random weights"
        ) from err


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
