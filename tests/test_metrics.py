"""Confusion-matrix metrics: hand-made matrices, ignore/void handling, the official definitions."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from cityseg_lib.data.labels import (
    CATEGORY_NAMES,
    CLASS_NAMES,
    IGNORE_INDEX,
    LABEL_ID_TO_TRAIN_ID,
    NUM_CLASSES,
    TRAIN_ID_TO_LABEL_ID,
)
from cityseg_lib.train.metrics import (
    ConfusionMatrix,
    normalized_confusion,
    predict_full_res,
    scores_from_matrix,
    scores_table,
    upsample_logits,
)

IGN = IGNORE_INDEX


def _small() -> ConfusionMatrix:
    """3 classes; rows = ground truth. Pixels (gt -> pred):
    0->0 x3, 0->1 x1, 1->1 x2, 1->2 x1, 1->void x1, 2->2 x0, ignored x2 (never counted)."""
    target = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, IGN, IGN])
    pred = torch.tensor([0, 0, 0, 1, 1, 1, 2, 7, 0, 2])
    cm = ConfusionMatrix(3)
    cm.update(pred, target)
    return cm


def test_hand_made_matrix_and_ious() -> None:
    cm = _small()
    expected = [[3, 1, 0, 0], [0, 2, 1, 1], [0, 0, 0, 0]]
    assert cm.mat.tolist() == expected
    s = cm.compute()
    # class 0: tp 3, fn 1, fp 0 -> 3/4; class 1: tp 2, fn 2, fp 1 -> 2/5; class 2: tp 0, fp 1 -> 0
    np.testing.assert_allclose(s.class_iou, [3 / 4, 2 / 5, 0.0])
    assert s.miou == pytest.approx((3 / 4 + 2 / 5 + 0) / 3)
    assert s.pixel_accuracy == pytest.approx(5 / 8)
    np.testing.assert_allclose(s.class_accuracy, [3 / 4, 2 / 4, math.nan])
    assert s.mean_class_accuracy == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert s.num_pixels == 8
    assert s.category_iou == {}  # only defined over the 19 Cityscapes classes


def test_absent_class_is_nan_and_skipped_in_mean() -> None:
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]))
    s = cm.compute()
    assert math.isnan(s.class_iou[2]) and s.miou == 1.0
    d = s.to_dict()
    assert set(d["class_iou"]) == {"class_0", "class_1", "class_2"}


def test_empty_matrix_gives_nan_without_warnings() -> None:
    with np.errstate(all="raise"):
        s = ConfusionMatrix().compute()
    assert math.isnan(s.miou) and math.isnan(s.pixel_accuracy) and math.isnan(s.mean_category_iou)


def test_accumulates_over_batches_and_resets() -> None:
    rng = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (3, 5, 7), generator=rng)
    pred = torch.randint(0, 4, (3, 5, 7), generator=rng)
    whole, parts = ConfusionMatrix(4), ConfusionMatrix(4)
    whole.update(pred, target)
    for i in range(3):
        parts.update(pred[i], target[i])
    assert torch.equal(whole.mat, parts.mat) and int(whole.mat.sum()) == 105
    parts.reset()
    assert int(parts.mat.sum()) == 0


def test_ignore_index_pixels_are_skipped_whatever_is_predicted() -> None:
    target = torch.tensor([[0, 1], [IGN, IGN]])
    a, b = ConfusionMatrix(2), ConfusionMatrix(2)
    a.update(torch.tensor([[0, 1], [0, 0]]), target)
    b.update(torch.tensor([[0, 1], [1, 255]]), target)
    assert torch.equal(a.mat, b.mat) and int(a.mat.sum()) == 2


def test_void_predictions_are_misses_in_the_extra_column() -> None:
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([255, -1, 2, 1]), torch.tensor([0, 0, 0, 1]))
    assert cm.mat.tolist() == [[0, 0, 3], [0, 1, 0]]
    s = cm.compute()
    assert s.class_iou.tolist() == [0.0, 1.0]  # void is a FN of class 0, a FP of nothing


def test_category_iou_merges_classes_of_a_category() -> None:
    road, sidewalk, car, truck = (CLASS_NAMES.index(n) for n in ("road", "sidewalk", "car", "truck"))
    target = torch.tensor([road, road, sidewalk, car, car, truck])
    pred = torch.tensor([sidewalk, road, sidewalk, truck, 255, road])
    cm = ConfusionMatrix()
    cm.update(pred, target)
    s = cm.compute()
    # flat: gt {0,1,2}, all predicted flat, plus pixel 5 (truck) predicted road -> fp 1: 3/4
    assert s.category_iou["flat"] == pytest.approx(3 / 4)
    # vehicle: gt {3,4,5}; 3 correct (truck for car counts), 4 void, 5 road -> 1/3
    assert s.category_iou["vehicle"] == pytest.approx(1 / 3)
    assert math.isnan(s.category_iou["sky"])
    assert s.mean_category_iou == pytest.approx((3 / 4 + 1 / 3) / 2)
    assert list(s.category_iou) == list(CATEGORY_NAMES)


def test_matches_official_definitions_on_random_label_id_images() -> None:
    official = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    args = copy.copy(official.args)
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 34, (4, 24, 40)).astype(np.uint8)
    pred = np.where(rng.random(gt.shape) < 0.6, gt, rng.integers(0, 34, gt.shape)).astype(np.uint8)
    # the official 34 x 34 labelId matrix, scored by the official functions
    mat = official.generateMatrix(args)
    np.add.at(mat, (gt.ravel(), pred.ravel()), 1)
    ref_cls = {official.id2label[i].name: official.getIouScoreForLabel(i, mat, args) for i in args.evalLabels}
    ref_cat = {c: official.getIouScoreForCategory(c, mat, args) for c in official.category2labels}
    # ours, on trainIds (void labelIds -> IGNORE_INDEX, which the metric puts in the void column)
    cm = ConfusionMatrix()
    cm.update(torch.from_numpy(LABEL_ID_TO_TRAIN_ID[pred]), torch.from_numpy(LABEL_ID_TO_TRAIN_ID[gt]))
    s = cm.compute()
    for i, name in enumerate(CLASS_NAMES):
        assert s.class_iou[i] == pytest.approx(ref_cls[name], abs=1e-12), name
    assert s.miou == pytest.approx(official.getScoreAverage(ref_cls, args), abs=1e-12)
    for name in CATEGORY_NAMES:
        assert s.category_iou[name] == pytest.approx(ref_cat[name], abs=1e-12), name
    assert s.mean_category_iou == pytest.approx(official.getScoreAverage(ref_cat, args), abs=1e-12)


def test_all_reduce_is_noop_without_and_sum_with_one_process(tmp_path: Path) -> None:
    cm = _small()
    before = cm.mat.clone()
    cm.all_reduce()
    assert torch.equal(cm.mat, before)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        cm.all_reduce()
    finally:
        dist.destroy_process_group()
    assert torch.equal(cm.mat, before)


def test_normalized_confusion_and_table() -> None:
    cm = _small()
    norm = cm.normalized()
    assert norm.shape == (3, 3)
    np.testing.assert_allclose(norm[0], [3 / 4, 1 / 4, 0])
    np.testing.assert_allclose(norm[1], [0, 2 / 4, 1 / 4])  # the void quarter stays in the row sum
    assert np.isnan(norm[2]).all()
    full = normalized_confusion(cm.mat, include_void=True)
    assert full.shape == (3, 4) and np.nansum(full, axis=1).tolist() == [1.0, 1.0, 0.0]
    table = scores_table(cm.compute())
    assert list(table.columns) == ["class", "iou", "accuracy"] and len(table) == 3
    full_table = scores_table(scores_from_matrix(np.zeros((NUM_CLASSES, NUM_CLASSES + 1), dtype=np.int64)))
    assert full_table["class"].tolist() == list(CLASS_NAMES)


def test_predict_full_res_matches_whole_batch_upsampling() -> None:
    logits = torch.randn(3, NUM_CLASSES, 8, 16, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(logits, size=(32, 64), mode="bilinear", align_corners=False).argmax(1)
    for chunk in (1, 2, 5):
        out = predict_full_res(logits, (32, 64), chunk=chunk)
        assert out.dtype == torch.int64 and out.shape == (3, 32, 64)
        assert torch.equal(out, expected)
    assert upsample_logits(logits, (8, 16)) is logits
    assert torch.equal(predict_full_res(logits.bfloat16(), (8, 16)), logits.bfloat16().float().argmax(1))


def test_train_to_label_id_roundtrip_sanity() -> None:
    # the metric's trainId space and the labelId tables agree (guards the official comparison)
    assert all(LABEL_ID_TO_TRAIN_ID[TRAIN_ID_TO_LABEL_ID[t]] == t for t in range(NUM_CLASSES))
