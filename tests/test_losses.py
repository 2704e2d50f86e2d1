"""Losses: hand-computed values, ideal/worst cases, ignore handling, gradients, build by name."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cityseg_lib.errors import CitysegError
from cityseg_lib.data.labels import IGNORE_INDEX, NUM_CLASSES
from cityseg_lib.train.losses import (
    CrossEntropyLoss,
    DiceLoss,
    JaccardLoss,
    build_loss,
    cross_entropy_loss,
    dice_loss,
    soft_jaccard_loss,
)

IGN = IGNORE_INDEX
LOSS_FNS = [cross_entropy_loss, soft_jaccard_loss, dice_loss]


def _tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """1 x 3 classes x 1 x 3 pixels with known softmax; class 2 never in the target.

    pixel a: p = (0.6, 0.2, 0.2), target 0; pixel b: p = (0.25, 0.5, 0.25), target 1;
    pixel c: ignored, p = (0.1, 0.1, 0.8).
    """
    probs = torch.tensor([[0.6, 0.2, 0.2], [0.25, 0.5, 0.25], [0.1, 0.1, 0.8]])
    logits = probs.log().T.reshape(1, 3, 1, 3).clone()
    target = torch.tensor([[[0, 1, IGN]]])
    return logits, target


def _one_hot_logits(target: torch.Tensor, num_classes: int, scale: float = 50.0) -> torch.Tensor:
    return scale * F.one_hot(target.clamp(max=num_classes - 1), num_classes).permute(0, 3, 1, 2).float()


def _random_target(shape: tuple[int, ...], seed: int = 0, p_ignore: float = 0.2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, NUM_CLASSES, shape, generator=g)
    target[torch.rand(shape, generator=g) < p_ignore] = IGN
    return target


def test_hand_computed_values() -> None:
    logits, target = _tiny()
    # class 0: I = 0.6, sum p = 0.85, |y| = 1 -> U = 1.25;  class 1: I = 0.5, sum p = 0.7 -> U = 1.2
    iou0, iou1 = 0.6 / 1.25, 0.5 / 1.2
    dice0, dice1 = 1.2 / 1.85, 1.0 / 1.7
    assert soft_jaccard_loss(logits, target).item() == pytest.approx(1 - (iou0 + iou1) / 2, abs=1e-6)
    assert dice_loss(logits, target).item() == pytest.approx(1 - (dice0 + dice1) / 2, abs=1e-6)
    assert cross_entropy_loss(logits, target).item() == pytest.approx(-(math.log(0.6) + math.log(0.5)) / 2, abs=1e-6)
    smoothed = 1 - ((0.6 + 1) / (1.25 + 1) + (0.5 + 1) / (1.2 + 1)) / 2
    assert soft_jaccard_loss(logits, target, smooth=1.0).item() == pytest.approx(smoothed, abs=1e-6)
    assert build_loss("dice", smooth=1.0)(logits, target).item() == pytest.approx(
        1 - ((1.2 + 1) / (1.85 + 1) + (1.0 + 1) / (1.7 + 1)) / 2, abs=1e-6
    )


def test_cross_entropy_matches_torch_when_some_pixels_are_valid() -> None:
    target = _random_target((2, 6, 10))
    logits = torch.randn(2, NUM_CLASSES, 6, 10, generator=torch.Generator().manual_seed(1))
    ref = F.cross_entropy(logits, target, ignore_index=IGN)
    assert cross_entropy_loss(logits, target).item() == pytest.approx(ref.item(), rel=1e-6)
    weight = torch.rand(NUM_CLASSES, generator=torch.Generator().manual_seed(2)) + 0.5
    ref_w = F.cross_entropy(logits, target, weight=weight, ignore_index=IGN)
    got_w = build_loss("cross_entropy", weight=weight.tolist())(logits, target)
    assert got_w.item() == pytest.approx(ref_w.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["cross_entropy", "iou", "jaccard", "dice"])
def test_perfect_prediction_gives_zero(name: str) -> None:
    target = _random_target((2, 8, 12))
    loss = build_loss(name)(_one_hot_logits(target, NUM_CLASSES), target)
    assert loss.item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("name", ["iou", "dice"])
def test_worst_prediction_gives_one(name: str) -> None:
    target = _random_target((2, 8, 12))
    wrong = torch.where(target == IGN, target, (target + 1) % NUM_CLASSES)
    loss = build_loss(name)(_one_hot_logits(wrong, NUM_CLASSES), target)
    assert loss.item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("fn", LOSS_FNS)
def test_ignored_pixels_change_neither_loss_nor_gradient(fn) -> None:  # noqa: ANN001
    target = _random_target((2, 6, 9), p_ignore=0.4)
    base = torch.randn(2, NUM_CLASSES, 6, 9, generator=torch.Generator().manual_seed(3))
    ignored = (target == IGN).unsqueeze(1).expand_as(base)
    other = torch.where(ignored, 30 * torch.randn_like(base), base)
    a, b = base.clone().requires_grad_(), other.clone().requires_grad_()
    la, lb = fn(a, target), fn(b, target)
    la.backward()
    lb.backward()
    assert la.item() == pytest.approx(lb.item(), abs=1e-6)
    assert torch.allclose(a.grad, b.grad, atol=1e-7)
    assert a.grad[ignored].abs().max().item() == 0.0  # ignored pixels get exactly no gradient
    assert a.grad[~ignored].abs().sum().item() > 0  # and the valid ones do


@pytest.mark.parametrize("fn", LOSS_FNS)
def test_all_ignored_target_gives_zero_not_nan(fn) -> None:  # noqa: ANN001
    logits = torch.randn(1, NUM_CLASSES, 4, 5, requires_grad=True)
    target = torch.full((1, 4, 5), IGN)
    loss = fn(logits, target)
    assert torch.isfinite(loss) and loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().max().item() == 0.0


@pytest.mark.parametrize("fn", LOSS_FNS)
def test_float32_under_bf16_autocast(fn) -> None:  # noqa: ANN001
    target = _random_target((2, 8, 8))
    logits = torch.randn(2, NUM_CLASSES, 8, 8, generator=torch.Generator().manual_seed(4))
    ref = fn(logits, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fn(logits.bfloat16(), target)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), abs=0.02)  # only the bf16 input rounding differs


def test_modules_and_registry() -> None:
    assert isinstance(build_loss("cross_entropy"), CrossEntropyLoss)
    assert isinstance(build_loss("iou"), JaccardLoss) and isinstance(build_loss("jaccard"), JaccardLoss)
    assert isinstance(build_loss("dice", smooth=1.0), DiceLoss)
    with pytest.raises(CitysegError, match="unknown loss 'focal'; valid names: cross_entropy, dice, iou, jaccard"):
        build_loss("focal")
    with pytest.raises(CitysegError, match=r"unknown option\(s\) gamma; valid options: ignore_index, smooth, eps"):
        build_loss("dice", gamma=2.0)
    with pytest.raises(ValueError, match="logits \\(N, C, H, W\\)"):
        dice_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))
