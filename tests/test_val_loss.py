"""What the validation loss is, pinned: the per-batch losses weighted by their batch's images
(``sum_b n_b L_b / sum_b n_b``), not a mean over images of per-image losses and not a plain mean
of the batch losses. It picks the best epoch and must stay what earlier runs computed."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from cityseg_lib.train.loop import evaluate
from cityseg_lib.train.losses import build_loss


def _frames():
    """Five frames of 19-channel "logits" (the model is the identity) whose masks label 1 to 16 of
    their 4x4 pixels, so that per-image, per-batch and per-pixel means all differ."""
    gen = torch.Generator().manual_seed(0)
    frames = []
    for i, labelled in enumerate((1, 16, 4, 9, 3)):
        logits = torch.randn(19, 4, 4, generator=gen) * 3
        mask = torch.full((16,), 255, dtype=torch.int64)
        mask[:labelled] = torch.randint(0, 19, (labelled,), generator=gen)
        frames.append((logits, mask.view(4, 4), f"f{i}"))
    return frames


def test_val_loss_is_the_image_weighted_mean_of_the_batch_losses():
    frames, criterion = _frames(), build_loss("cross_entropy")
    loader = DataLoader(frames, batch_size=2, shuffle=False)  # batches of 2, 2 and 1 images
    val_loss, *_ = evaluate(nn.Identity(), criterion, loader, torch.device("cpu"))

    batches = [frames[0:2], frames[2:4], frames[4:5]]
    batch_losses = [criterion(torch.stack([f[0] for f in b]), torch.stack([f[1] for f in b])).item() for b in batches]
    image_losses = [criterion(f[0][None], f[1][None]).item() for f in frames]
    weighted = sum(len(b) * loss for b, loss in zip(batches, batch_losses)) / len(frames)
    assert abs(val_loss - weighted) < 1e-9
    plain_batch_mean = sum(batch_losses) / len(batch_losses)
    image_mean = sum(image_losses) / len(image_losses)
    assert abs(val_loss - plain_batch_mean) > 1e-3 and abs(val_loss - image_mean) > 1e-3
    # and it depends on the batching: one batch of all five is the mean over their labelled pixels
    whole, *_ = evaluate(nn.Identity(), criterion, DataLoader(frames, batch_size=5), torch.device("cpu"))
    assert abs(whole - val_loss) > 1e-3
