"""Optimisers by name (Section 3.3 of the reference compares AdamW, Adam and Adamax).

Decoupled weight decay for AdamW, L2 added to the gradient for Adam and Adamax, as torch defines
them, on every parameter: biases, BatchNorm and LayerNorm weights and Swin V2's ``logit_scale``
included: one parameter group, as the reference's plain optimisers (timm's training script exempts
the 1-D ones; AdamW shrinks each weight by lr x decay = 1e-7 per step at the reference's 1e-3 and
1e-4). Each is built with the fastest implementation torch has for it: the fused kernel (one kernel
updates every parameter tensor, on CPU and CUDA) for AdamW and Adam, the multi-tensor ``foreach``
path for Adamax, which has no fused kernel. The update is the per-parameter loop's (after one step
the weights agree to float32 round-off); on a CPU core the fused AdamW step of the demo U-Net (0.5 M
parameters in 64 tensors) takes 0.9 ms instead of 6.6, which is 10% of a training step
(benchmarks/README.md §3b). A run resumed from a checkpoint written with the loop keeps the loop
(``load_state_dict`` restores the saved param_group flags), so it stays exact.
"""

from __future__ import annotations

import torch

from cityseg_lib.config import TrainConfig

__all__ = ["OPTIMIZERS", "FUSED", "make_optimizer", "build_optimizer"]

#: name -> torch optimiser class; the names are the config's ``optimizer`` values (``config.OPTIMIZER_NAMES``).
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "adamax": torch.optim.Adamax}

#: The optimisers torch has a fused kernel for.
FUSED = frozenset({"adamw", "adam"})


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``params``: fused where torch has a fused kernel (:data:`FUSED`),
    multi-tensor otherwise. The benchmarks time the engine's step with it."""
    impl = {"fused": True} if name in FUSED else {"foreach": True}
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, **impl)


def build_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over ``params`` with ``cfg.lr`` and ``cfg.weight_decay``."""
    return make_optimizer(cfg.optimizer, params, cfg.lr, cfg.weight_decay)
