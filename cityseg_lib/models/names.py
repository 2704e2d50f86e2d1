"""The one table of model display names (tables, figures and prose all use it)."""

from __future__ import annotations

__all__ = ["DISPLAY_NAMES", "display_name"]

DISPLAY_NAMES = {"simple_fcn": "SimpleFCN", "unet": "U-Net", "swin2_jnet": "Swin2-JNet"}


def display_name(model: str) -> str:
    """``unet`` -> ``U-Net``; unknown names are returned as given."""
    return DISPLAY_NAMES.get(model, model)
