"""The three architectures of the study, built by name: ``build_model(name, num_classes, **options)``.

=============  ===========================================================================
name           options (defaults)
=============  ===========================================================================
simple_fcn     base_width=64
unet           base_width=64, depth=4, dropout=0.0
swin2_jnet     encoder="swinv2_base_window12to24_192to384", img_size=None, pretrained=True,
               weights=None, dropout=0.0, batchnorm=True, encoder_kwargs=None, decoder_channels=None
=============  ===========================================================================

Every model is a plain ``nn.Module``, encoder -> decoder -> head, mapping images
``(N, 3, H, W)`` float to logits ``(N, num_classes, H, W)`` at the input size.
"""

from __future__ import annotations

from cityseg_lib.models.registry import (build_model, check_model, check_weights, model_names, model_options,
                                         model_revision, register_model)
from cityseg_lib.models.simple_fcn import SimpleFCN
from cityseg_lib.models.summary import model_summary
from cityseg_lib.models.swin2_jnet import DEFAULT_ENCODER, DEMO_ENCODER, Swin2JNet, TimmEncoder
from cityseg_lib.models.unet import UNet

__all__ = [
    "MODEL_NAMES",
    "build_model",
    "check_model",
    "model_revision",
    "check_weights",
    "register_model",
    "model_names",
    "model_options",
    "model_summary",
    "SimpleFCN",
    "UNet",
    "Swin2JNet",
    "TimmEncoder",
    "DEFAULT_ENCODER",
    "DEMO_ENCODER",
]

#: Registered model names, sorted (the modules above registered themselves on import).
MODEL_NAMES: tuple[str, ...] = model_names()
