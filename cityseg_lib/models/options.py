"""Model options from notebook parameters (empty values mean "not set")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["swin_options", "batchnorm_option"]


def swin_options(encoder: str, pretrained: bool, weights: str = "", encoder_kwargs: dict | None = None,
                 dropout: float = 0.0, **extra: Any) -> dict:
    """``model_options`` of a Swin2-JNet run from notebook parameters ("" and empty mean "not set")."""
    options = {"encoder": encoder, "pretrained": bool(pretrained), "dropout": float(dropout)}
    if weights:
        options["weights"] = str(Path(weights).expanduser())
    if encoder_kwargs:
        options["encoder_kwargs"] = dict(encoder_kwargs)
    options.update({k: v for k, v in extra.items() if v is not None})
    return options


def batchnorm_option(model: str) -> str | None:
    """Name of the model's option that switches BatchNorm off, or None when it has none."""
    from cityseg_lib.models.registry import model_options

    return "batchnorm" if "batchnorm" in model_options(model) else None
