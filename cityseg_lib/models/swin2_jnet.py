"""Swin2-JNet, the second enhanced model: a timm Swin V2 encoder and a U-Net-like ("J") decoder.

Section 2.3 of the reference report. The encoder is ``timm.create_model(encoder, features_only=True,
img_size=...)``: four stages at strides 4/8/16/32, returned NHWC by Swin and permuted here to NCHW.
The decoder is "a series of upscaling convolutions" with the four features "as skip connections to
up-convolutions in a similar way to UNet" (the reference): one block per encoder stage, deepest first;
each up-samples the deeper block's output with a learned transposed convolution (kernel = stride =
the stride ratio, 2; an up-convolution as the U-Net's), concatenates the stage's feature (the skip
connection) and applies (3x3 conv, BatchNorm, ReLU) x 2 and Dropout. A 1x1 classifier at stride 4 and
a bilinear up-sampling by 4 give the logits at the input size (classifying before up-sampling equals
the reverse order, both being linear, with 19 instead of ``decoder_channels[0]`` full-size channels).
All widths and strides come from the encoder's ``feature_info``. This is revision 3 of the model's
computation (:data:`~.swin2_jnet_options.REVISIONS`); up to revision 2 the decoder up-sampled bilinearly.

Sizes that are not multiples of 32: every grid starts at the top-left pixel, Swin's patch merging pads
an odd grid at the bottom/right (48 rows: 12, 6, 3, then 2 rows that cover 64) and its patch
embedding drops the last ``H % 4`` rows. So each up-sampling is by exactly the stride ratio (the
transposed convolution puts coarse cell ``i``'s output on fine cells ``2i, 2i+1``, which it covers),
then cropped (or edge-padded) to the finer grid: stretching 2 rows onto 3 instead would shift the
deepest feature by up to 8 pixels of a 48-pixel image.

Swin V2 fixes its input size at creation (patch grid, attention windows and masks), so the model is
built for ``img_size``. **Inputs of another size are resized** (bilinear) to ``img_size`` and the
logits resized back: the output is always at the input size (training feeds ``img_size``).

Weights (``pretrained``/``weights``, :mod:`.timm_weights`): timm's download for users with internet;
a local checkpoint file for everyone else (timm's ``checkpoint_filter_fn`` adapts a checkpoint of the
classification model, e.g. the hub's ``model.safetensors``, to this ``img_size``); random weights
with ``pretrained=False``. Failing to get weights is one :class:`CitysegError` naming the ways out;
with ``HF_HUB_OFFLINE=1`` it fails at once instead of waiting on the network. timm is imported when
a model is built, not with the package: a process that trains no Swin does not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cityseg_lib.data.labels import NUM_CLASSES
from cityseg_lib.models.registry import check_size, register_model
from cityseg_lib.models.swin2_jnet_options import (check_swin2_jnet, check_swin2_jnet_batch, check_swin2_jnet_weights,
                                                    swin2_jnet_revision)
from cityseg_lib.models.timm_weights import create_encoder
from cityseg_lib.models.unet import DoubleConv

__all__ = ["Swin2JNet", "TimmEncoder", "DEFAULT_ENCODER", "DEMO_ENCODER"]

#: Encoder of the full profile (the reference report's Swin2 base), and the demo's small one.
DEFAULT_ENCODER = "swinv2_base_window12to24_192to384"
DEMO_ENCODER = "swinv2_tiny_window8_256"

_NAME = "swin2_jnet"
def _fit(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """``x (N, C, h, w)`` on a grid anchored at the top-left pixel as ``size``'s, with the same cells
    -> ``(N, C, *size)``: the rows/columns past ``size`` cropped (those of a padded grid), the missing
    ones edge-padded (those of a grid that dropped a remainder); never stretched."""
    pad_h, pad_w = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if pad_h < 0 or pad_w < 0:
        x = x[..., : size[0], : size[1]]
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, (0, max(pad_w, 0), 0, max(pad_h, 0)), mode="replicate")
    return x


def _upsample(x: torch.Tensor, factor: int, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """``x (N, C, h, w)`` on a grid ``factor`` times coarser than ``size``, both anchored at the top-left
    pixel -> ``(N, C, *size)``: bilinear by exactly ``factor``, then :func:`_fit`. Equals
    ``F.interpolate(x, size)`` when ``size == factor * (h, w)``. The head's up-sampling."""
    h, w = x.shape[-2:]
    return _fit(F.interpolate(x, size=(h * factor, w * factor), mode="bilinear", align_corners=False), size)


# ----------------------------------------------------------------------------- building blocks


class TimmEncoder(nn.Module):
    """A timm ``features_only`` model: ``(N, 3, H, W)`` -> NCHW features, shallow to deep.

    Attributes:
        out_channels: channels of each feature (``feature_info.channels()``).
        reductions: stride of each feature (``feature_info.reduction()``), e.g. (4, 8, 16, 32).
        img_size: the ``(H, W)`` the encoder requires, or None when it takes any size.
    """

    def __init__(
        self,
        name: str,
        img_size: tuple[int, int] | None = None,
        pretrained: bool = False,
        weights: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if img_size is not None:
            kwargs["img_size"] = img_size
        self.model = create_encoder(name, kwargs, pretrained, weights, who=_NAME)
        self.out_channels = tuple(self.model.feature_info.channels())
        self.reductions = tuple(self.model.feature_info.reduction())
        fmt = getattr(self.model, "output_fmt", "NCHW")
        self.nhwc = getattr(fmt, "value", fmt) == "NHWC"  # Swin returns (N, H, W, C)
        patch_embed = getattr(self.model, "patch_embed", None)
        fixed = patch_embed is not None and getattr(patch_embed, "strict_img_size", False)
        self.img_size = tuple(patch_embed.img_size) if fixed else None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.model(x)
        if self.nhwc:
            # a permuted view: NCHW shape with channels_last memory, no copy
            features = [f.permute(0, 3, 1, 2) for f in features]
        return features


class _JDecoder(nn.Module):
    """Features ``(N, C_i, H/r_i, W/r_i)`` shallow to deep -> ``(N, D_0, H/r_0, W/r_0)``.

    Block ``i`` (deepest first) takes ``cat(up_i(previous block), feature_i)`` to ``D_i`` channels.
    ``up_i`` is a transposed convolution ``D_{i+1} -> D_{i+1}`` channels with kernel = stride = the
    stride ratio ``r_{i+1} / r_i`` (``reductions``, default 2), its output fitted to feature ``i``'s
    grid (:func:`_fit`). It keeps ``D_{i+1}`` channels where the U-Net's halves them: the U-Net halves
    ``2 C_i`` to meet a skip of ``C_i`` channels half and half, and the default widths here
    (``D_{i+1} = C_{i+1} / 2 = C_i``, Swin doubling its channels per stage) meet the skip half and half
    already; halving again would pass the deeper path at a third of the concatenation.
    """

    def __init__(self, encoder_channels: tuple[int, ...], channels: tuple[int, ...], dropout: float,
                 batchnorm: bool = True, reductions: tuple[int, ...] | None = None) -> None:
        super().__init__()
        deeper = (*channels[1:], 0)  # channels arriving from the deeper block; none for the deepest
        blocks = [DoubleConv(cin + cskip, cout, dropout, batchnorm)
                  for cskip, cin, cout in zip(encoder_channels, deeper, channels)]
        self.blocks = nn.ModuleList(blocks[::-1])
        self.out_channels = channels[0]
        reductions = reductions or tuple(2**i for i in range(len(channels)))
        # ratio of each stage's stride to the next shallower one's, deepest first
        factors = tuple(max(deep // shallow, 1) for shallow, deep in zip(reductions[:-1], reductions[1:]))[::-1]
        # up-convolution into block i + 1 (deepest first), from the channels of the block before it
        self.ups = nn.ModuleList(nn.ConvTranspose2d(c, c, f, stride=f) for c, f in zip(channels[:0:-1], factors))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        deepest, *skips = features[::-1]
        x = self.blocks[0](deepest)
        for up, block, skip in zip(self.ups, self.blocks[1:], skips):
            x = block(torch.cat([_fit(up(x), skip.shape[-2:]), skip], dim=1))
        return x


# ----------------------------------------------------------------------------- the model


@register_model(_NAME, check=check_swin2_jnet, revision=swin2_jnet_revision, batch_check=check_swin2_jnet_batch,
                weights_check=check_swin2_jnet_weights)
class Swin2JNet(nn.Module):
    """Swin V2 encoder + J-shaped decoder: up-convolutions, skip connections, BatchNorm and Dropout.

    Args:
        num_classes: output channels (19 Cityscapes trainIds).
        encoder: timm model name (optionally with a pretrained tag, ``name.tag``).
        img_size: ``(H, W)`` the encoder is built for (the training size); None = timm's default
            for the encoder (e.g. 384x384). Other input sizes are resized to it and back.
        pretrained: load pretrained encoder weights (timm's download, or ``weights``).
        weights: path of a local checkpoint of the timm model (``.safetensors``, ``.pth``, ``.bin``);
            needs ``pretrained`` (the default).
        dropout: rate of the Dropout closing every decoder block (0 = none).
        batchnorm: BatchNorm after every decoder convolution (False: plain biased convolutions,
            for the regularisation ablation).
        encoder_kwargs: extra ``timm.create_model`` arguments, e.g. a tiny Swin for tests:
            ``dict(embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 3, 4))``.
        decoder_channels: output channels of the decoder block at each encoder stage, shallow to
            deep (and of the up-convolution that takes a block's output to the next); None = half
            the stage's channels.

    ``forward``: images ``(N, 3, H, W)`` float -> logits ``(N, num_classes, H, W)``.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        encoder: str = DEFAULT_ENCODER,
        img_size: tuple[int, int] | None = None,
        pretrained: bool = True,
        weights: str | None = None,
        dropout: float = 0.0,
        batchnorm: bool = True,
        encoder_kwargs: dict[str, Any] | None = None,
        decoder_channels: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        kwargs = check_swin2_jnet({"encoder": encoder, "img_size": img_size, "pretrained": pretrained,
                                   "weights": weights, "dropout": dropout, "batchnorm": batchnorm,
                                   "encoder_kwargs": encoder_kwargs, "decoder_channels": decoder_channels})
        if img_size is not None:
            img_size = check_size(_NAME, "img_size", img_size)
        dropout = float(dropout)

        self.encoder = TimmEncoder(encoder, img_size, pretrained, weights, **kwargs)
        self.img_size = self.encoder.img_size
        # a given list was checked above (one width per stage); None: half of each stage's channels
        decoder_channels = tuple(decoder_channels or (max(c // 2, 1) for c in self.encoder.out_channels))
        self.decoder = _JDecoder(self.encoder.out_channels, decoder_channels, dropout, batchnorm,
                                 self.encoder.reductions)
        self.head = nn.Conv2d(self.decoder.out_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        if self.img_size is not None and tuple(size) != self.img_size:  # see the module docstring
            x = F.interpolate(x, size=self.img_size, mode="bilinear", align_corners=False)
        logits = self.head(self.decoder(self.encoder(x)))  # at stride r_0 of x
        stride, (gh, gw) = self.encoder.reductions[0], logits.shape[-2:]
        if (gh * stride, gw * stride) != tuple(x.shape[-2:]):  # the patch grid dropped a remainder
            logits = _upsample(logits, stride, x.shape[-2:])
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
