"""Parameter count and forward FLOPs of a model at a given input size, for the report's model table.

FLOPs are those of ``torch.utils.flop_counter.FlopCounterMode``: 2 per multiply-add of
convolutions, transposed convolutions, matrix products and attention (a 3x3 convolution costs
``2 * Cin * Cout * 9 * Hout * Wout``); biases, normalisation, activations, pooling and
interpolation are not counted (they are a few percent and memory-bound anyway).

A model built on the ``meta`` device is measured without allocating memory or computing anything,
which makes the 768x768 numbers of the full-size models cheap::

    with torch.device("meta"):
        model = build_model("swin2_jnet", pretrained=False, img_size=(768, 768))
    model_summary(model, (768, 768))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["model_summary"]


def _reference_tensor(model: nn.Module) -> torch.Tensor | None:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def _is_channels_last(model: nn.Module) -> bool:
    for p in model.parameters():
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1:  # unambiguous conv weight
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


def model_summary(
    model: nn.Module,
    input_size: tuple[int, int] = (768, 768),
    batch_size: int = 1,
    channels_last: bool | None = None,
) -> dict[str, Any]:
    """Count parameters and measure one forward pass on random input ``(batch_size, 3, H, W)``.

    The input follows the model's device and floating dtype (and its memory format when
    ``channels_last`` is None); the pass runs in eval mode without gradients, under whatever
    ``torch.autocast`` the caller has entered, and the model's train/eval mode is restored.

    Returns a dict: ``params``, ``trainable_params``, ``param_bytes`` (storage of the parameters),
    ``flops`` (forward, whole batch), ``gflops_per_image``, ``input_size``, ``batch_size``,
    ``output_shape``.
    """
    h, w = (int(v) for v in input_size)
    ref = _reference_tensor(model)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None else torch.float32
    if channels_last is None:
        channels_last = _is_channels_last(model)
    x = torch.randn(batch_size, 3, h, w, device=device, dtype=dtype) if device.type != "meta" else torch.empty(
        batch_size, 3, h, w, device=device, dtype=dtype
    )
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model(x)
    finally:
        model.train(was_training)

    params = list(model.parameters())
    flops = int(counter.get_total_flops())
    return {
        "params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "param_bytes": sum(p.numel() * p.element_size() for p in params),
        "flops": flops,
        "gflops_per_image": flops / batch_size / 1e9,
        "input_size": (h, w),
        "batch_size": batch_size,
        "output_shape": tuple(out.shape),
    }
