"""Contract tests for the synthetic demo dataset (``cityseg_lib.data.demo``).

Tiny frames (96x48) check layout, file formats and byte-identical reruns; a modest split
(24 + 8 frames at 256x128, built once per module) checks that every train class appears, that
coarse labels are coarse, and that pixel colour alone cannot segment the scenes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cityseg_lib.data.demo import DEMO_CITIES, make_demo_dataset
from cityseg_lib.errors import CitysegError
from cityseg_lib.data.labels import IGNORE_INDEX, LABEL_ID_COLORS, LABEL_ID_TO_TRAIN_ID, LABELS, NUM_CLASSES, VALID_LABEL_IDS
from cityseg_lib.data.layout import find_samples

TINY = dict(train=3, val=2, test=2, train_extra=2, size=(96, 48), seed=3)
OFFICIAL_CITIES = {
    "aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt", "hamburg", "hanover", "jena",
    "krefeld", "monchengladbach", "strasbourg", "stuttgart", "tubingen", "ulm", "weimar", "zurich", "frankfurt",
    "lindau", "munster", "berlin", "bielefeld", "bonn", "leverkusen", "mainz", "munich",
}
NAME = re.compile(r"^([a-z-]+)_(\d{6})_(\d{6})_leftImg8bit\.png$")
INSTANCE_IDS = {lb.id for lb in LABELS if lb.has_instances and lb.id >= 0}


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _read(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("tiny") / "demo", **TINY)


@pytest.fixture(scope="module")
def modest(tmp_path_factory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("modest") / "demo", train=24, val=8, test=0, size=(256, 128), seed=0)


def test_layout_and_file_names_are_official(tiny):
    counts = {"train": 3, "val": 2, "test": 2, "train_extra": 2}
    for split, n in counts.items():
        images = sorted((tiny / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
        assert len(images) == n
        for img in images:
            m = NAME.match(img.name)
            assert m and m.group(1) == img.parent.name, img
            key = img.name[: -len("_leftImg8bit.png")]
            for ann, splits in (("gtFine", ("train", "val", "test")), ("gtCoarse", ("train", "val", "train_extra"))):
                for kind in ("labelIds", "color", "instanceIds"):
                    assert (tiny / ann / split / img.parent.name / f"{key}_{ann}_{kind}.png").is_file() == (split in splits)
    n_labels = sum(counts[s] for s in ("train", "val", "test")) * 3 + sum(counts[s] for s in ("train", "val", "train_extra")) * 3
    assert len(list(tiny.glob("gt*/*/*/*.png"))) == n_labels  # nothing else in the label folders
    assert "NOT Cityscapes data" in (tiny / "README.txt").read_text()
    # the project's own reader pairs everything
    assert len(find_samples(tiny, "train")) == 3 and len(find_samples(tiny, "val", "coarse")) == 2
    assert len(find_samples(tiny, "train_extra", "coarse")) == 2 and len(find_samples(tiny, "test", labels=False)) == 2


def test_pngs_have_official_modes_sizes_and_values(tiny):
    for lbl in sorted(tiny.glob("gt*/*/*/*_labelIds.png")):
        stem = str(lbl)[: -len("labelIds.png")]
        ann, split, city = lbl.parts[-4:-1]
        img = Image.open(tiny / "leftImg8bit" / split / city / (lbl.name.split(f"_{ann}_")[0] + "_leftImg8bit.png"))
        assert img.mode == "RGB" and img.size == (96, 48)
        im = Image.open(lbl)
        assert im.mode == "L" and im.size == (96, 48)
        ids = np.asarray(im)
        assert set(np.unique(ids).tolist()) <= VALID_LABEL_IDS
        color = Image.open(stem + "color.png")
        assert color.mode == "RGBA"
        rgba = np.asarray(color)
        assert (rgba[..., 3] == 255).all() and (rgba[..., :3] == LABEL_ID_COLORS[ids]).all()
        inst_im = Image.open(stem + "instanceIds.png")
        assert inst_im.mode in ("I;16", "I") and inst_im.size == (96, 48)
        inst = np.asarray(inst_im).astype(np.int64)
        big = inst >= 1000
        assert (inst[big] // 1000 == ids[big]).all() and (inst[~big] == ids[~big]).all()
        assert set(np.unique(ids[big]).tolist()) <= INSTANCE_IDS


def test_test_split_labels_are_unusable(tiny):
    for lbl in (tiny / "gtFine" / "test").glob("*/*_labelIds.png"):
        assert set(np.unique(_read(lbl)).tolist()) <= {0, 1}  # unlabeled, ego vehicle


def test_cities_are_made_up_and_disjoint_between_splits(tiny):
    cities = {s: {p.name for p in (tiny / "leftImg8bit" / s).iterdir()} for s in ("train", "val", "test", "train_extra")}
    assert cities["train"] <= set(DEMO_CITIES["train"]) and len(cities["train"]) == 3
    assert not cities["train"] & cities["val"] and not cities["train"] & cities["test"]
    assert not set().union(*cities.values()) & OFFICIAL_CITIES


def test_output_is_byte_identical_for_same_arguments_and_any_workers(tiny, tmp_path):
    ref = _digest(tiny)
    assert _digest(make_demo_dataset(tmp_path / "again", **TINY)) == ref
    assert _digest(make_demo_dataset(tmp_path / "parallel", **TINY, workers=2)) == ref


def test_different_seed_gives_different_frames(tiny, tmp_path):
    other = make_demo_dataset(tmp_path / "other", **{**TINY, "seed": 4})
    a, b = _digest(tiny), _digest(other)
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a if k.endswith("_leftImg8bit.png"))


def test_rerun_replaces_a_demo_dataset_but_refuses_other_folders(tmp_path):
    root = make_demo_dataset(tmp_path / "d", train=2, val=0, test=0, size=(32, 16))
    make_demo_dataset(root, train=1, val=0, test=0, size=(32, 16), coarse=False)
    assert len(list(root.rglob("*.png"))) == 4 and not (root / "gtCoarse").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(CitysegError, match="not empty"):
        make_demo_dataset(tmp_path / "other", train=1, val=0, test=0, size=(32, 16))


@pytest.mark.parametrize("kwargs", [dict(train=-1), dict(size=(8, 8)), dict(size=(64,)), dict(workers=0), dict(seed=-1),
                                    dict(train_extra=2, coarse=False)])
def test_bad_arguments_raise_cityseg_error(tmp_path, kwargs):
    key, value = next(iter(kwargs.items()))  # the error names the argument at fault and its value
    with pytest.raises(CitysegError, match=f"^{re.escape(f'{key}={value!r}:')}"):
        make_demo_dataset(tmp_path / "x", **{"train": 1, "val": 0, "test": 0, "size": (32, 16), **kwargs})


def _train_ids(root: Path, split: str, ann: str = "gtFine") -> np.ndarray:
    return np.stack([LABEL_ID_TO_TRAIN_ID[_read(p)] for p in sorted((root / ann / split).glob(f"*/*_{ann}_labelIds.png"))])


def _images(root: Path, split: str) -> np.ndarray:
    return np.stack([_read(p) for p in sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))])


def test_all_train_classes_appear_in_a_modest_train_split(modest):
    present = np.unique(_train_ids(modest, "train"))
    assert set(range(NUM_CLASSES)) <= set(present.tolist())


def test_coarse_labels_have_more_void_and_sit_inside_fine_regions(modest):
    fine = np.stack([_read(p) for p in sorted((modest / "gtFine" / "train").glob("*/*_labelIds.png"))])
    coarse = np.stack([_read(p) for p in sorted((modest / "gtCoarse" / "train").glob("*/*_labelIds.png"))])
    assert (coarse == 0).mean() > (fine == 0).mean() + 0.1
    labelled = coarse != 0
    assert (coarse[labelled] == fine[labelled]).mean() > 0.99
    thin = np.isin(fine, (17, 19, 20)), np.isin(coarse, (17, 19, 20))  # poles, lights, signs
    assert thin[1].mean() < 0.5 * thin[0].mean()  # small things are mostly left out


def _miou(pred: np.ndarray, target: np.ndarray) -> float:
    valid = target != IGNORE_INDEX
    cm = np.bincount(NUM_CLASSES * target[valid].astype(np.int64) + pred[valid], minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    return float(np.nanmean(iou[cm.sum(1) > 0]))


def _bin_classifier(train_bins: np.ndarray, train_y: np.ndarray, n_bins: int):
    """Majority trainId per feature bin (bins never seen in training predict the global majority)."""
    valid = train_y != IGNORE_INDEX
    counts = np.bincount(train_bins[valid] * NUM_CLASSES + train_y[valid], minlength=n_bins * NUM_CLASSES).reshape(n_bins, -1)
    table = counts.argmax(1)
    table[counts.sum(1) == 0] = counts.sum(0).argmax()
    return table


def test_colour_alone_is_not_enough(modest):
    """A per-colour majority classifier is clearly worse than one that also knows the pixel's row."""
    x_tr, y_tr = _images(modest, "train"), _train_ids(modest, "train")
    x_va, y_va = _images(modest, "val"), _train_ids(modest, "val")

    def colour_bins(x):  # 8x8x8 RGB histogram bins
        q = x.astype(np.int64) // 32
        return q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]

    def row_bins(x):  # ... times 8 bands of image rows
        rows = (np.arange(x.shape[1]) * 8 // x.shape[1])[None, :, None]
        return colour_bins(x) * 8 + rows

    scores = {}
    for name, feat, n in (("colour", colour_bins, 512), ("colour+row", row_bins, 4096)):
        table = _bin_classifier(feat(x_tr).ravel(), y_tr.ravel(), n)
        scores[name] = _miou(table[feat(x_va)].ravel(), y_va.ravel())
    print(f"val mIoU of per-bin majority classifiers: {scores}")
    assert scores["colour"] < 0.3
    assert scores["colour+row"] > scores["colour"] + 0.04


def test_make_demo_data_stamps_the_settings_of_the_frames_it_wrote(tmp_path, capsys):
    """`cityseg make-demo-data` into a generated folder (a profile's data/P) left the earlier stamp in
    place: seed 0 claimed over frames of --seed 5, so `make report` trusted the frames as its settings'
    and the report's provenance named the wrong seed. The stamp now names what is there."""
    from cityseg_lib.cli import main
    from cityseg_lib.data.source import generator_settings

    out = tmp_path / "data"
    common = ["make-demo-data", str(out), "--train", "2", "--val", "1", "--test", "0", "--size", "64x32", "--workers", "1"]
    assert main([*common, "--seed", "0"]) == 0
    assert generator_settings(out) == {"train": 2, "val": 1, "test": 0, "train_extra": 0, "size": [64, 32], "seed": 0,
                                       "coarse": True}
    first = (out / "leftImg8bit").rglob("*.png").__next__().read_bytes()
    assert main([*common, "--seed", "5"]) == 0
    assert generator_settings(out)["seed"] == 5
    assert (out / "leftImg8bit").rglob("*.png").__next__().read_bytes() != first
    assert main([*common, "--seed", "-1"]) == 2  # a bad value: one line, and the stamp of the frames kept
    assert "seed=-1" in capsys.readouterr().err and generator_settings(out)["seed"] == 5


@pytest.mark.parametrize("line, needle", [
    # PROJECT/data/FOLDER: these generated the demo data outside data/ (or into data/ itself)
    ("folder: /tmp/elsewhere", "folder='/tmp/elsewhere' must be one plain folder name"),
    ("folder: ../../escape", "folder='../../escape' must be one plain folder name"),
    ("folder: ''", "folder='' must be one plain folder name"),
    ("folder: [a]", "folder=['a']: expected a folder name under data/"),
    # a quoted 'no' (or 1) was read as true: the data was generated
    ("generate: 'no'", "generate='no': expected true or false"),
    ("generate: 1", "generate=1: expected true or false"),
])
def test_data_yaml_folder_and_generate_are_checked_where_read(tmp_path, monkeypatch, line, needle):
    from cityseg_lib.data import source

    monkeypatch.setattr(source, "params_dir", lambda profile: tmp_path)
    monkeypatch.setattr(source, "generate_demo", lambda *a, **k: pytest.fail("data generated"))
    base = {"generate": "generate: true", "folder": "folder: fz"}
    key = line.split(":")[0]
    (tmp_path / "data.yaml").write_text("\n".join([*(v for k, v in base.items() if k != key), line, "train: 1",
                                                   "val: 1", "size: [16, 16]"]) + "\n")
    with pytest.raises(CitysegError) as err:
        source.ensure_data("", "p")
    assert str(tmp_path / "data.yaml") in str(err.value) and needle in str(err.value), err.value
