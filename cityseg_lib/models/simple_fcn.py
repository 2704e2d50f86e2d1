"""SimpleFCN, the baseline: three encoding and three decoding steps, then a 1x1 classifier.

Section 2.1 of the reference report. Encoding step: 3x3 convolution that doubles the channels
(the first one maps RGB to ``base_width``), ReLU, 2x2 max-pool. Decoding step: 2x2 transposed
convolution with stride 2 that halves the channels and doubles the size. With width ``w``::

    (N, 3, H, W) -> w @ H/2 -> 2w @ H/4 -> 4w @ H/8        encoder
                 -> 2w @ H/4 -> w @ H/2 -> w/2 @ H          decoder
                 -> (N, num_classes, H, W)                  1x1 classifier

The report lists only the transposed convolution in a decoding step; we add a ReLU after each
one, because without a non-linearity the three steps collapse into a single linear up-sampling
(it adds no parameters or FLOPs). Inputs whose sides are not multiples of 8 are zero-padded on
the bottom/right and the logits cropped back, so any input size works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cityseg_lib.errors import CitysegError
from cityseg_lib.data.labels import NUM_CLASSES
from cityseg_lib.models.registry import check_int, register_model

__all__ = ["SimpleFCN"]

_STEPS = 3  # encoding (and decoding) steps; the input is padded to a multiple of 2**_STEPS


class _Encoder(nn.Module):
    """``(N, 3, H, W)`` -> features ``[(N, w, H/2, W/2), (N, 2w, H/4, W/4), (N, 4w, H/8, W/8)]``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.out_channels = tuple(width * 2**i for i in range(_STEPS))
        self.reductions = tuple(2 ** (i + 1) for i in range(_STEPS))
        in_channels = (3, *self.out_channels[:-1])
        self.steps = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
            for cin, cout in zip(in_channels, self.out_channels)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for step in self.steps:
            x = step(x)
            features.append(x)
        return features


class _Decoder(nn.Module):
    """Deepest feature ``(N, 4w, H/8, W/8)`` -> ``(N, w/2, H, W)``; no skip connections."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        widths = [in_channels // 2**i for i in range(_STEPS + 1)]
        self.out_channels = widths[-1]
        self.steps = nn.Sequential(
            *(
                nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, stride=2), nn.ReLU(inplace=True))
                for cin, cout in zip(widths[:-1], widths[1:])
            )
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.steps(features[-1])


def check_simple_fcn(options: dict, input_size: tuple[int, int] | None = None) -> None:
    """``base_width`` even and >= 2 (the last decoding step halves it); any input size (padded)."""
    base_width = options["base_width"]
    if check_int("simple_fcn", "base_width", base_width, minimum=2) % 2:
        raise CitysegError(
            f"simple_fcn: option base_width={base_width!r} must be even (the last decoding step halves it)"
        )


@register_model("simple_fcn", check=check_simple_fcn)
class SimpleFCN(nn.Module):
    """The baseline fully-convolutional network.

    Args:
        num_classes: output channels (19 Cityscapes trainIds).
        base_width: channels after the first encoding step (even, >= 2); the deepest feature
            has ``4 * base_width`` channels and the classifier sees ``base_width / 2``.

    ``forward``: images ``(N, 3, H, W)`` float -> logits ``(N, num_classes, H, W)``.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, base_width: int = 64) -> None:
        super().__init__()
        check_simple_fcn({"base_width": base_width})
        self.encoder = _Encoder(base_width)
        self.decoder = _Decoder(self.encoder.out_channels[-1])
        self.head = nn.Conv2d(self.decoder.out_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        multiple = 2**_STEPS
        pad_h, pad_w = -h % multiple, -w % multiple
        if pad_h or pad_w:  # pooling floors odd sizes; pad so the decoder lands on the input grid
            x = F.pad(x, (0, pad_w, 0, pad_h))
        logits = self.head(self.decoder(self.encoder(x)))
        return logits[..., :h, :w]
