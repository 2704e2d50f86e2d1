"""Training speed measured side by side: the models of several configs stepped in turn, in one process.

The images/s a run records per epoch (``metrics.csv``) depend on what else the machine did while
it trained: notebooks train side by side and other processes come and go, so two runs' speeds
compare their neighbours as much as their models (the demo's SimpleFCN trained at 59 images/s in
one build and at 152 in the next, on the same machine). Here every model takes ``steps`` training
steps in turn, round after round in a rotated order, on a fixed random batch of its config's size:
a change of load hits all of them within seconds of each other. Each round gives one
seconds-per-image per model, paired across the models by round.

The step is the engine's own (:func:`cityseg_lib.train.loop.train_one_epoch` on a list of one
batch): forward under the config's autocast, float32 loss, backward, optimiser step; the data
loader is left out (its cost is benchmark 1's), as are pretrained weights (the speed is the same).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from cityseg_lib.config import TrainConfig
from cityseg_lib.data.labels import NUM_CLASSES
from cityseg_lib.errors import CitysegError
from cityseg_lib.train.engine import build_model_for, build_optimizer
from cityseg_lib.train.loop import train_one_epoch
from cityseg_lib.train.losses import build_loss
from cityseg_lib.train.setup import configure_cuda, precision, resolve_device, set_cpu_threads

__all__ = ["interleaved_step_seconds"]


def interleaved_step_seconds(configs: Mapping[str, TrainConfig], rounds: int = 10, steps: int = 3, warmup: int = 2,
                             device: str = "auto", threads: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """``{label: (rounds,) seconds per training image}`` of each config's model, measured in turn.

    Every model first takes ``warmup`` untimed steps (allocation, cudnn autotuning); then each of
    ``rounds`` rounds steps every model ``steps`` times, the order rotated by one each round.
    ``threads``: torch CPU threads during the measurement (0: the process's; runs train with their
    profile's count), restored afterwards.
    """
    if rounds < 2 or steps < 1 or warmup < 0:
        raise CitysegError(f"side-by-side timing: rounds={rounds} (>= 2), steps={steps} (>= 1), warmup={warmup} (>= 0)")
    dev = resolve_device(device)
    configure_cuda(dev)
    before = torch.get_num_threads()
    set_cpu_threads(threads)
    try:
        gen = torch.Generator().manual_seed(seed)
        setups = {label: _setup(cfg, dev, gen) for label, cfg in configs.items()}

        def seconds_per_image(label: str, n: int) -> float:
            model, criterion, optimizer, batch, amp, channels_last = setups[label]
            out = train_one_epoch(model, criterion, optimizer, batch * n, dev, amp=amp, channels_last=channels_last)
            return out["seconds"] / out["images"]

        for label in setups:
            if warmup:
                seconds_per_image(label, warmup)
        labels, times = list(setups), {label: [] for label in setups}
        for r in range(rounds):
            k = r % len(labels)
            for label in labels[k:] + labels[:k]:
                times[label].append(seconds_per_image(label, steps))
        return {label: np.asarray(v) for label, v in times.items()}
    finally:
        torch.set_num_threads(before)


def _setup(cfg: TrainConfig, device: torch.device, gen: torch.Generator) -> tuple:
    """Model, loss, optimiser, a one-batch list and the autocast / memory-format switches of ``cfg``,
    as :func:`cityseg_lib.train.engine.fit` sets them up (random weights, random batch)."""
    amp, channels_last = precision(cfg, device)  # cpu_bf16=auto: as this machine would train the run
    model = build_model_for(cfg, init_weights=False).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    h, w = cfg.crop_size or cfg.image_size
    images = torch.randn(cfg.batch_size, 3, h, w, generator=gen)
    masks = torch.randint(0, NUM_CLASSES, (cfg.batch_size, h, w), generator=gen)
    return model, build_loss(cfg.loss), build_optimizer(cfg, model.parameters()), [(images, masks, None)], amp, channels_last
