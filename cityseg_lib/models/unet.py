"""U-Net (Ronneberger et al., 2015), the first enhanced model.

Encoder: a double 3x3 convolution block (conv, BatchNorm, ReLU, twice) at full resolution, then
``depth`` times a 2x2 max-pool and a double block that doubles the channels. Decoder: ``depth``
times a 2x2 transposed convolution (halves the channels, doubles the size), concatenation with
the encoder feature of the same resolution (the skip connection) and a double block that halves
the channels again. A 1x1 convolution classifies. With width ``w`` and depth ``d``::

    (N, 3, H, W) -> w @ H -> 2w @ H/2 -> ... -> w*2**d @ H/2**d      encoder
                 -> ... -> 2w @ H/2 -> w @ H -> (N, num_classes, H, W)  decoder, head

Differences from the paper, as in most re-implementations: padded convolutions (output size =
input size, no cropping of skips), BatchNorm, and an optional Dropout at the end of every double
block (the dropout of the hyper-parameter sweep, Section 3.5). Max-pool floors odd sizes; the
up-sampled feature is zero-padded by one row/column to its skip, so any input size works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cityseg_lib.errors import CitysegError
from cityseg_lib.data.labels import NUM_CLASSES
from cityseg_lib.models.registry import check_int, check_probability, register_model

__all__ = ["UNet", "DoubleConv", "check_unet", "check_unet_batch"]


def _dropout(p: float) -> nn.Module:
    # Identity at p=0 keeps the graph (and torch.compile) free of a no-op
    return nn.Dropout(p) if p > 0 else nn.Identity()


class DoubleConv(nn.Sequential):
    """``(N, cin, H, W)`` -> ``(N, cout, H, W)``: (3x3 conv, BatchNorm, ReLU) x 2, Dropout.

    ``batchnorm=False`` drops the BatchNorm layers (the convolutions then get a bias), for the
    regularisation ablation of the Swin2-JNet notebook.
    """

    def __init__(self, cin: int, cout: int, dropout: float = 0.0, batchnorm: bool = True) -> None:
        def conv_norm_relu(i: int, o: int) -> list[nn.Module]:
            if batchnorm:  # bias is redundant before BatchNorm
                return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
            return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU(inplace=True)]

        super().__init__(*conv_norm_relu(cin, cout), *conv_norm_relu(cout, cout), _dropout(dropout))


class _Encoder(nn.Module):
    """``(N, 3, H, W)`` -> ``depth + 1`` features, ``w * 2**i`` channels at stride ``2**i``."""

    def __init__(self, width: int, depth: int, dropout: float) -> None:
        super().__init__()
        self.out_channels = tuple(width * 2**i for i in range(depth + 1))
        self.reductions = tuple(2**i for i in range(depth + 1))
        self.stem = DoubleConv(3, width, dropout)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout, dropout))
            for cin, cout in zip(self.out_channels[:-1], self.out_channels[1:])
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if min(x.shape[-2:]) < self.reductions[-1]:
            raise CitysegError(
                f"unet: input size {tuple(x.shape[-2:])} is smaller than 2**depth = {self.reductions[-1]}"
            )
        features = [self.stem(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        return features


class _Up(nn.Module):
    """``x (N, cin, h, w)``, ``skip (N, cin/2, H, W)`` with ``H in {2h, 2h+1}`` -> ``(N, cout, H, W)``."""

    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin, cout, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        pad_h, pad_w = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if pad_h or pad_w:  # the max-pool below dropped an odd last row/column
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.conv(torch.cat([skip, x], dim=1))


class _Decoder(nn.Module):
    """Encoder features (shallow to deep) -> ``(N, w, H, W)`` at the resolution of the first one."""

    def __init__(self, encoder_channels: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        deep_to_shallow = encoder_channels[::-1]
        self.ups = nn.ModuleList(
            _Up(cin, cout, dropout) for cin, cout in zip(deep_to_shallow[:-1], deep_to_shallow[1:])
        )
        self.out_channels = encoder_channels[0]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x, *skips = features[::-1]
        for up, skip in zip(self.ups, skips):
            x = up(x, skip)
        return x


#: Deepest U-Net accepted: 8 max-pools take a 2048-pixel side to 8 pixels (and the bottleneck to
#: ``base_width * 256`` channels); deeper is a typo, not a design.
MAX_DEPTH = 8


def check_unet(options: dict, input_size: tuple[int, int] | None = None) -> None:
    """The U-Net's option values (base_width, depth <= :data:`MAX_DEPTH`, dropout), and an input size
    of at least ``2**depth`` per side (each max-pool halves it)."""
    check_int("unet", "base_width", options["base_width"])
    depth = check_int("unet", "depth", options["depth"])
    if depth > MAX_DEPTH:
        raise CitysegError(f"unet: option depth={depth} is above {MAX_DEPTH} (each level halves the input and "
                           "doubles the channels)")
    check_probability("unet", "dropout", options["dropout"])
    if input_size is not None and min(input_size) < 2**depth:
        raise CitysegError(f"unet: the training input {list(input_size)} is smaller than 2**depth = {2**depth} on a "
                           "side; lower model_options.depth or raise image_size/crop_size")


def check_unet_batch(options: dict, input_size: tuple[int, int] | None, smallest_batch: int) -> None:
    """A training batch of one image whose bottleneck is 1x1 (``input // 2**depth`` on both sides):
    BatchNorm in training mode normalises over ``N * H * W`` values per channel, and one value has
    no variance (torch raises "Expected more than 1 value per channel when training"). Refused where
    the config enters, naming what to change; evaluation uses the running statistics and is unaffected."""
    if input_size is None or smallest_batch != 1:
        return
    depth = options["depth"]
    if all(side // 2**depth == 1 for side in input_size):
        raise CitysegError(f"unet: a training batch of 1 image at {list(input_size)} with depth={depth} leaves a 1x1 "
                           "bottleneck, one value per channel for BatchNorm; raise batch_size (and the training "
                           f"images) to 2 or more, or image_size/crop_size to {2 ** (depth + 1)} on a side, or lower "
                           "model_options.depth")


@register_model("unet", check=check_unet, batch_check=check_unet_batch)
class UNet(nn.Module):
    """U-Net with BatchNorm, padded convolutions and optional dropout.

    Args:
        num_classes: output channels (19 Cityscapes trainIds).
        base_width: channels of the full-resolution blocks (64 in the paper).
        depth: number of max-pool steps (4 in the paper); the bottleneck has
            ``base_width * 2**depth`` channels at stride ``2**depth``.
        dropout: rate of the Dropout closing every double convolution block (0 = none).

    ``forward``: images ``(N, 3, H, W)`` float, any H and W -> logits ``(N, num_classes, H, W)``.
    """

    def __init__(
        self, num_classes: int = NUM_CLASSES, base_width: int = 64, depth: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        check_unet({"base_width": base_width, "depth": depth, "dropout": dropout})
        dropout = float(dropout)
        self.encoder = _Encoder(base_width, depth, dropout)
        self.decoder = _Decoder(self.encoder.out_channels, dropout)
        self.head = nn.Conv2d(self.decoder.out_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))
