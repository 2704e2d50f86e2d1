"""evaluate_folder: same class IoUs as the official cityscapesScripts evaluation, clear errors."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cityseg_lib.errors import CitysegError
from cityseg_lib.evaluate.folder import _joint_counts, evaluate_folder, find_pairs, format_result, write_json
from cityseg_lib.data.labels import CATEGORY_NAMES, CLASS_NAMES

official = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")

VOID_IDS = [0, 1, 2, 3, 4, 5, 6, 9, 14, 15, 16, 29, 30]
EVAL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
FRAMES = [
    ("aachen", 0, 19), ("aachen", 1, 19), ("bochum", 0, 313), ("bochum", 7, 42), ("zurich", 3, 5), ("zurich", 3, 6),
]
W, H = 64, 32


def _blobs(rng: np.random.Generator, ids: list[int], n: int) -> np.ndarray:
    """(H, W) uint8 labelIds: a background of one id plus ``n`` random rectangles."""
    img = np.full((H, W), rng.choice(ids), dtype=np.uint8)
    for _ in range(n):
        y, x = rng.integers(0, H), rng.integers(0, W)
        h, w = rng.integers(2, H // 2), rng.integers(2, W // 2)
        img[y : y + h, x : x + w] = rng.choice(ids)
    return img


def _key(city: str, seq: int, frame: int) -> str:
    return f"{city}_{seq:06d}_{frame:06d}"


def _make_dataset(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Official layout in ``root``: gtFine/val/CITY/*_gtFine_labelIds.png and pred/ with noisy copies."""
    rng = np.random.default_rng(seed)
    gt_root, pred_dir = root / "cityscapes", root / "pred"
    # most ground-truth classes appear; bus (28) never does, so its IoU is NaN unless predicted
    gt_ids = [i for i in EVAL_IDS if i != 28] + VOID_IDS
    for city, seq, frame in FRAMES:
        gt = _blobs(rng, gt_ids, 14)
        pred = gt.copy()
        noise = rng.random((H, W)) < 0.25
        pred[noise] = rng.choice(EVAL_IDS + VOID_IDS, size=int(noise.sum()))
        pred[rng.integers(0, H) :, : rng.integers(0, W)] = rng.choice(VOID_IDS)  # a void block
        folder = gt_root / "gtFine" / "val" / city
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(gt, mode="L").save(folder / f"{_key(city, seq, frame)}_gtFine_labelIds.png")
        out = pred_dir / city
        out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pred, mode="L").save(out / f"{_key(city, seq, frame)}_leftImg8bit.png")
    return gt_root, pred_dir


def _official(pairs: list[tuple[Path, Path]]) -> dict:
    args = copy.copy(official.args)
    args.evalInstLevelScore = False  # needs np.in1d, gone in numpy 2.x; and no instanceIds here
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.quiet = True
    preds = [str(p) for p, _ in pairs]
    gts = [str(g) for _, g in pairs]
    return official.evaluateImgLists(preds, gts, args)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _make_dataset(tmp_path_factory.mktemp("eval"))


@pytest.mark.parametrize("workers", [1, 2])
def test_matches_official_script(dataset: tuple[Path, Path], workers: int) -> None:
    gt_root, pred_dir = dataset
    ours = evaluate_folder(pred_dir, gt_root, "val", workers=workers)
    ref = _official(find_pairs(pred_dir, gt_root, "val"))
    assert ours["num_images"] == len(FRAMES)
    for name in CLASS_NAMES:
        assert _same(ours["class_iou"][name], ref["classScores"][name]), name
    assert _same(ours["miou"], ref["averageScoreClasses"])
    for name in CATEGORY_NAMES:
        assert _same(ours["category_iou"][name], ref["categoryScores"][name]), name
    assert _same(ours["mean_category_iou"], ref["averageScoreCategories"])
    assert math.isnan(ours["class_iou"]["bus"]) == math.isnan(ref["classScores"]["bus"])
    # the void predictions really were there and really were counted as misses
    assert sum(row[-1] for row in ours["confusion_matrix"]) > 0


def test_official_pairing_and_nan_class(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path, seed=3)
    for path in pred_dir.rglob("*.png"):  # no prediction of bus either -> NaN in both
        arr = np.array(Image.open(path))
        arr[arr == 28] = 26
        Image.fromarray(arr, mode="L").save(path)
    ours = evaluate_folder(pred_dir, gt_root, workers=1)
    ref = _official(find_pairs(pred_dir, gt_root))
    assert math.isnan(ours["class_iou"]["bus"]) and math.isnan(ref["classScores"]["bus"])
    assert _same(ours["miou"], ref["averageScoreClasses"])


def test_perfect_predictions(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    for gt in (gt_root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"):
        target = pred_dir / gt.parent.name / gt.name.replace("_gtFine_labelIds", "_leftImg8bit")
        target.write_bytes(gt.read_bytes())
    result = evaluate_folder(pred_dir, gt_root, workers=1)
    assert result["miou"] == 1.0 and result["pixel_accuracy"] == 1.0 and result["mean_category_iou"] == 1.0


def test_write_json_and_format(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    gt_root, pred_dir = dataset
    result = evaluate_folder(pred_dir, gt_root, workers=1)
    path = write_json(result, tmp_path / "sub" / "eval.json")
    loaded = json.loads(path.read_text())
    assert loaded["num_images"] == len(FRAMES)
    assert loaded["miou"] == pytest.approx(result["miou"])
    assert loaded["class_iou"] == result["class_iou"]  # floats round-trip exactly
    # strict JSON: an absent class's NaN IoU is written as null (not NaN, not a number)
    absent = {**result, "class_iou": {**result["class_iou"], "bus": float("nan")}}
    text = write_json(absent, tmp_path / "absent.json").read_text()
    assert json.loads(text)["class_iou"]["bus"] is None, text
    text = format_result(result)
    assert "mIoU" in text and "road" in text and "vehicle" in text


def test_palette_and_16_bit_predictions(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    before = evaluate_folder(pred_dir, gt_root, workers=1)
    paths = sorted(pred_dir.rglob("*.png"))
    arr = np.array(Image.open(paths[0]))
    Image.fromarray(arr, mode="L").convert("P").save(paths[0])  # palette indices == labelIds
    assert Image.open(paths[0]).mode == "P"
    after = evaluate_folder(pred_dir, gt_root, workers=1)
    assert all(_same(after["class_iou"][n], before["class_iou"][n]) for n in CLASS_NAMES)
    # 16-bit labelIds score like 8-bit ones; a value above 33 is no labelId: refused, naming the file
    # (cityscapesScripts fails on it too), not counted as a miss
    wide = np.array(Image.open(paths[1])).astype(np.uint16)
    Image.fromarray(wide).save(paths[1])
    got = evaluate_folder(pred_dir, gt_root, workers=1)
    assert all(_same(got["class_iou"][n], before["class_iou"][n]) for n in CLASS_NAMES)
    for bad in (300, 34):
        wide[:4] = bad
        Image.fromarray(wide).save(paths[1])
        _raises(f"{paths[1]} holds value {bad}, not a Cityscapes labelId", pred_dir, gt_root, workers=1)
    with pytest.raises(CitysegError, match=r"workers=-2: expected an integer >= 0"):
        evaluate_folder(pred_dir, gt_root, workers=-2)


@pytest.mark.parametrize("kind", ["blobby", "noisy", "constant", "empty"])
def test_run_length_counting_equals_per_pixel_bincount(kind: str) -> None:
    rng = np.random.default_rng(1)
    if kind == "blobby":
        gt, pred = _blobs(rng, EVAL_IDS + VOID_IDS, 10), _blobs(rng, EVAL_IDS + VOID_IDS, 10)
    elif kind == "noisy":
        gt, pred = (rng.integers(0, 256, (H, W)).astype(np.uint8) for _ in range(2))
    elif kind == "constant":
        gt, pred = np.full((H, W), 7, np.uint8), np.full((H, W), 255, np.uint8)
    else:
        gt, pred = np.zeros((0, W), np.uint8), np.zeros((0, W), np.uint8)
    expected = np.bincount((gt.astype(np.int64) * 256 + pred).ravel(), minlength=65536)
    got = _joint_counts(gt, pred)
    assert got.dtype == np.int64 and np.array_equal(got, expected)


# ----------------------------------------------------------------------------- errors


def _raises(match: str, *args: object, **kwargs: object) -> str:
    with pytest.raises(CitysegError, match=match) as info:
        evaluate_folder(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_gt_folder(tmp_path: Path) -> None:
    (tmp_path / "pred").mkdir()
    _raises("ground-truth folder not found", tmp_path / "pred", tmp_path / "nowhere")


def test_no_gt_files(tmp_path: Path) -> None:
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt" / "gtFine" / "val" / "aachen").mkdir(parents=True)
    _raises("no \\*_gtFine_labelIds.png files", tmp_path / "pred", tmp_path / "gt")


def test_the_test_split_and_all_void_labels_are_refused(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    _raises("split='test': Cityscapes withholds the test split's labels", pred_dir, gt_root, split="test")
    for gt in (gt_root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"):
        Image.fromarray(np.zeros((H, W), np.uint8), mode="L").save(gt)  # labelId 0: unlabeled, void
    _raises("every ground-truth pixel of the 6 frames is void", pred_dir, gt_root, workers=1)


def test_missing_prediction_folder(tmp_path: Path) -> None:
    gt_root, _ = _make_dataset(tmp_path)
    _raises("prediction folder not found", tmp_path / "absent", gt_root)


def test_missing_predictions_are_named(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    for path in list((pred_dir / "zurich").glob("*.png")):
        path.unlink()
    message = _raises("no prediction .* for 2 of 6", pred_dir, gt_root, workers=1)
    assert "zurich_000003_000005" in message and "zurich_000003_000006" in message


def test_two_predictions_for_one_frame(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    src = pred_dir / "aachen" / "aachen_000000_000019_leftImg8bit.png"
    (pred_dir / "aachen_000000_000019_copy.png").write_bytes(src.read_bytes())
    _raises("2 predictions match frame aachen_000000_000019", pred_dir, gt_root, workers=1)


def test_prediction_name_must_start_with_frame_key(tmp_path: Path) -> None:
    # official pattern "{city}_{seq}_{frame}*.png": a prefix before the key does not match
    gt_root, pred_dir = _make_dataset(tmp_path)
    src = pred_dir / "aachen" / "aachen_000000_000019_leftImg8bit.png"
    src.rename(src.with_name("pred_aachen_000000_000019.png"))
    _raises("aachen_000000_000019", pred_dir, gt_root, workers=1)


def test_size_mismatch_names_file_and_sizes(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    bad = pred_dir / "bochum" / "bochum_000007_000042_leftImg8bit.png"
    Image.fromarray(np.zeros((H, W + 1), dtype=np.uint8), mode="L").save(bad)
    message = _raises("65x32 but ground truth", pred_dir, gt_root, workers=1)
    assert str(bad) in message and "64x32" in message


def test_unreadable_png(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    bad = pred_dir / "bochum" / "bochum_000000_000313_leftImg8bit.png"
    bad.write_bytes(b"not a png")
    message = _raises("cannot read PNG", pred_dir, gt_root, workers=2)
    assert str(bad) in message


def test_rgb_prediction_rejected(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    bad = pred_dir / "bochum" / "bochum_000000_000313_leftImg8bit.png"
    Image.new("RGB", (W, H)).save(bad)
    _raises("not a single-channel labelIds PNG", pred_dir, gt_root, workers=1)


def test_gt_with_train_ids_rejected(tmp_path: Path) -> None:
    gt_root, pred_dir = _make_dataset(tmp_path)
    gt = gt_root / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    Image.fromarray(np.full((H, W), 255, dtype=np.uint8), mode="L").save(gt)
    _raises("holds value 255, not a Cityscapes labelId", pred_dir, gt_root, workers=1)
