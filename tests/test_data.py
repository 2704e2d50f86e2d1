"""Data layer: layout pairing, validation errors (CLI exit 2, one line), dataset items, cache, subsets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cityseg_lib.data.check import check_dataset
from cityseg_lib.cli import main
from cityseg_lib.data.dataset import CityscapesSegmentation, preprocess_sample, subset_indices
from cityseg_lib.errors import CitysegError
from cityseg_lib.data.layout import find_samples

W, H = 32, 16


def _frame(root: Path, split: str, city: str, i: int, label: np.ndarray | None = None, img_size=(W, H)) -> str:
    key = f"{city}_{i:06d}_000019"
    rng = np.random.default_rng(i)
    (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
    (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (img_size[1], img_size[0], 3), dtype=np.uint8)).save(
        root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png")
    if label is None:
        label = rng.choice([0, 7, 8, 11, 21, 23, 26], size=(H, W)).astype(np.uint8)
    Image.fromarray(label).save(root / "gtFine" / split / city / f"{key}_gtFine_labelIds.png")
    return key


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A hand-made valid dataset: 3 train frames (city 'aa'), 2 val frames (city 'bb')."""
    root = tmp_path / "ds"
    for i in range(3):
        _frame(root, "train", "aa", i)
    for i in range(2):
        _frame(root, "val", "bb", i)
    return root


def _cli(args, capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    return code, err


def test_valid_tiny_dataset_checks(tiny, capsys):
    summary = check_dataset(tiny, workers=1)
    assert summary["splits"]["train"]["images"] == 3 and summary["splits"]["val"]["cities"] == {"bb": 2}
    assert summary["image_sizes"] == {f"{W}x{H}": 5}
    assert set(summary["classes_present"]) == {"road", "sidewalk", "building", "vegetation", "sky", "car"}
    assert main(["check-data", "--root", str(tiny)]) == 0
    out = capsys.readouterr().out  # the summary's numbers, per split (not just the word "train": a class name too)
    assert re.search(r"^  train +3 images  \(1 cities: aa 3\)$", out, re.M) and \
        re.search(r"^  val +2 images  \(1 cities: bb 2\)$", out, re.M), out
    assert f"image sizes  {W}x{H} (5)" in out and "6/19 present in fine labels" in out, out


def test_coarse_labels_without_their_images_are_listed_not_an_error(tiny, capsys):
    """gtCoarse.zip holds train_extra's labels, whose images are a 44 GB download of their own: a
    root with the labels alone checks (notebook 01's overview too), naming what is not used."""
    from cityseg_lib.data.statistics import dataset_overview

    for split in ("train", "train_extra"):
        (tiny / "gtCoarse" / split / "aa").mkdir(parents=True)
    for i in range(3):
        key = f"aa_{i:06d}_000019"
        label = np.full((H, W), 7, dtype=np.uint8)
        Image.fromarray(label).save(tiny / "gtCoarse" / "train" / "aa" / f"{key}_gtCoarse_labelIds.png")
        Image.fromarray(label).save(tiny / "gtCoarse" / "train_extra" / "aa" / f"{key}_gtCoarse_labelIds.png")
    summary = check_dataset(tiny, workers=1)
    assert summary["annotations"]["gtCoarse"]["splits"] == ["train"]
    assert summary["annotations"]["gtCoarse"]["without_images"] == ["train_extra"]
    assert summary["image_sizes"] == {f"{W}x{H}": 5}  # images, each once: the coarse pairs reuse them
    assert dataset_overview(tiny)["coarse_counts"] == {"train": 3}
    assert main(["check-data", "--root", str(tiny)]) == 0
    assert "labels without images (not used): train_extra (its images: leftImg8bit_trainextra.zip)" in \
        capsys.readouterr().out
    with pytest.raises(CitysegError, match="train_extra images are their own download, leftImg8bit_trainextra.zip"):
        find_samples(tiny, "train_extra", "coarse")


def _one_line_error(code, err, *fragments):
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err


def test_missing_root(tmp_path, capsys):
    code, err = _cli(["check-data", "--root", str(tmp_path / "nope")], capsys)
    _one_line_error(code, err, "nope", "leftImg8bit", "cityscapes-dataset.com")


def test_a_file_as_root_and_bad_workers(tiny, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    _one_line_error(*_cli(["check-data", "--root", str(tmp_path / "afile")], capsys), "afile", "is a file")
    _one_line_error(*_cli(["check-data", "--root", str(tiny), "--workers", "-2"], capsys), "workers=-2")


def test_no_root_configured(capsys):
    code, err = _cli(["check-data"], capsys)
    _one_line_error(code, err, "CITYSCAPES_DATASET")


def test_missing_split_folder(tiny):
    with pytest.raises(CitysegError, match=r"missing split folder .*leftImg8bit/test"):
        find_samples(tiny, "test", labels=False)


def test_image_without_label(tiny, capsys):
    (tiny / "gtFine/train/aa/aa_000001_000019_gtFine_labelIds.png").unlink()
    code, err = _cli(["check-data", "--root", str(tiny)], capsys)
    _one_line_error(code, err, "without a gtFine_labelIds.png label", "aa_000001_000019_leftImg8bit.png")


def test_label_without_image(tiny, capsys):
    for i in range(2):
        (tiny / f"leftImg8bit/val/bb/bb_{i:06d}_000019_leftImg8bit.png").unlink()
    code, err = _cli(["check-data", "--root", str(tiny)], capsys)
    _one_line_error(code, err, "2 label(s) without a leftImg8bit image", "bb_000000_000019_gtFine_labelIds.png")


def test_truncated_png(tiny, capsys):
    p = tiny / "leftImg8bit/train/aa/aa_000002_000019_leftImg8bit.png"
    p.write_bytes(p.read_bytes()[:200])
    code, err = _cli(["check-data", "--root", str(tiny), "--workers", "1"], capsys)
    _one_line_error(code, err, str(p), "corrupt")


def test_label_ids_outside_table(tiny, capsys):
    _frame(tiny, "train", "aa", 1, label=np.full((H, W), 77, np.uint8))
    code, err = _cli(["check-data", "--root", str(tiny)], capsys)
    _one_line_error(code, err, "aa_000001_000019_gtFine_labelIds.png", "labelId 77")


def test_size_mismatch(tiny, capsys):
    _frame(tiny, "val", "bb", 1, img_size=(W * 2, H * 2))
    code, err = _cli(["check-data", "--root", str(tiny)], capsys)
    _one_line_error(code, err, "bb_000001_000019_gtFine_labelIds.png", f"label is {W}x{H}", f"is {2 * W}x{2 * H}")


def test_empty_split(tiny, capsys):
    (tiny / "leftImg8bit/val/empty").mkdir()
    for f in (tiny / "leftImg8bit/val/bb").iterdir():
        f.unlink()
    for f in (tiny / "gtFine/val/bb").iterdir():
        f.unlink()
    code, err = _cli(["check-data", "--root", str(tiny)], capsys)
    _one_line_error(code, err, "empty split", "val")


def test_dataset_items(tiny, tmp_path):
    ds = CityscapesSegmentation(tiny, "train", size=(24, 40), cache_dir=tmp_path / "c")
    image, mask, sid = ds[1]
    assert image.shape == (3, 24, 40) and image.dtype == torch.float32
    assert mask.shape == (24, 40) and mask.dtype == torch.int64
    assert sid == "aa_000001_000019"
    assert set(mask.unique().tolist()) <= {0, 1, 2, 8, 10, 13, 255}
    assert -3 < image.mean() < 3  # normalised, not 0..255


def test_uint8_items_normalised_on_the_device_equal_the_float_items(tiny, tmp_path):
    from cityseg_lib.train.engine import to_device

    floats = CityscapesSegmentation(tiny, "train", size=(24, 40), cache_dir=tmp_path / "c")
    raw = CityscapesSegmentation(tiny, "train", size=(24, 40), cache_dir=tmp_path / "c", normalize=False)
    image, mask, sid = raw[1]
    assert image.dtype == mask.dtype == torch.uint8 and image.shape == (3, 24, 40) and sid == floats[1][2]
    batch = torch.utils.data.default_collate([raw[0], raw[1]])
    images, masks = to_device(batch[0], batch[1], torch.device("cpu"), channels_last=True)
    assert images.dtype == torch.float32 and masks.dtype == torch.int64
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(images, torch.stack([floats[0][0], floats[1][0]]))
    assert torch.equal(masks, torch.stack([floats[0][1], floats[1][1]]))


def test_mask_resize_is_nearest_and_image_antialiased(tiny):
    label = np.zeros((H, W), np.uint8)
    label[:, ::2] = 7  # road / unlabeled stripes: a bilinear mask would invent in-between ids
    _frame(tiny, "train", "aa", 0, label=label)
    arr = preprocess_sample(find_samples(tiny, "train")[0], (8, 16))
    assert set(np.unique(arr[..., 3])) <= {0, 255}


def _stripe_pair(width: int = 1024, height: int = 64, left: int = 410, right: int = 570):
    """A frame whose image is white exactly where its mask is class 1 (columns ``left:right``)."""
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    mask = torch.zeros(height, width, dtype=torch.uint8)
    image[:, :, left:right], mask[:, left:right] = 255, 1
    return image, mask


def test_masks_are_resized_at_pixel_centres_in_register_with_their_image():
    """The label of a training pixel is the one under its centre, where the bilinear image resize
    centres its colour: the class-1 columns of the resized mask are the columns whose resized image
    is mostly white. Plain 'nearest' (top-left corners, every run before 2026-12-05) puts the mask
    half a training pixel right of its image: 1024 -> 96 columns (10.67 px each), the stripe at
    410-570 covers the centres of columns 38-52 and the corners of 39-53."""
    from cityseg_lib.data.transforms import resize_pair

    image, mask = _stripe_pair()
    for mode in ("nearest-exact", "nearest"):
        img, msk = resize_pair(image, mask, (6, 96), mode)
        white = set(torch.nonzero(img[0, 0] > 127).flatten().tolist())
        labelled = set(torch.nonzero(msk[0] == 1).flatten().tolist())
        assert white == set(range(38, 53))
        assert labelled == (white if mode == "nearest-exact" else set(range(39, 54)))
    # an odd scale (700 -> 77 columns), where the corner rule loses the stripe's first column
    img, msk = resize_pair(*_stripe_pair(700, 50, 210, 290), (10, 77))
    assert set(torch.nonzero(msk[0] == 1).flatten().tolist()) == set(torch.nonzero(img[0, 0] > 127).flatten().tolist())


def test_augmentation_resizes_masks_at_pixel_centres_and_nearest_is_torchvisions_transform():
    """The random flip + resized crop (FlipAndCrop) keeps mask and image in register with the
    default; with mask_resize='nearest' it is, draw for draw, the v2.Compose the runs trained before
    2026-12-05 used (so they resume exactly)."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    from cityseg_lib.data.transforms import train_augmentation

    image, mask = _stripe_pair(512, 256, 200, 280)
    legacy = v2.Compose([v2.RandomHorizontalFlip(p=0.5), v2.RandomResizedCrop([24, 48], scale=(0.5, 1.0),
                                                                               antialias=True)])
    ours, exact = train_augmentation((24, 48), 0.5, (0.5, 1.0), "nearest"), train_augmentation((24, 48), 0.5, (0.5, 1.0))
    shifted = 0
    for seed in range(12):
        torch.manual_seed(seed)
        want = legacy(tv_tensors.Image(image), tv_tensors.Mask(mask))
        torch.manual_seed(seed)
        got = ours(image, mask)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        torch.manual_seed(seed)
        img, msk = exact(image, mask)
        assert torch.equal(img, want[0])  # the same window, the same image
        assert torch.equal(msk == 1, img[0] > 127), seed  # the mask in register with it
        shifted += not torch.equal(want[1] == 1, want[0][0] > 127)
    assert shifted  # the legacy mask is off its image for some windows


def test_a_run_saved_before_mask_resize_loads_with_the_resize_it_trained_with(tmp_path):
    """A run folder whose config.yaml predates the key computed with plain nearest: loading it gives
    that (evaluate's training-size pass, the qualitative grid's truth), not today's default."""
    import yaml

    from cityseg_lib import runstore
    from cityseg_lib.config import load_config
    from cityseg_lib.strict import config_to_dict

    run = tmp_path / "r-00000000"
    run.mkdir()
    saved = {k: v for k, v in config_to_dict(load_config(None, {"name": "r"})).items() if k != "mask_resize"}
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    assert runstore.load_config(run).mask_resize == "nearest"
    (run / "config.yaml").write_text(yaml.safe_dump({**saved, "mask_resize": "nearest-exact"}))
    assert runstore.load_config(run).mask_resize == "nearest-exact"


def test_each_mask_resize_has_its_own_cache_and_entries_are_readable_by_others(tiny, tmp_path):
    exact = CityscapesSegmentation(tiny, "train", size=(8, 16), cache_dir=tmp_path / "c")
    legacy = CityscapesSegmentation(tiny, "train", size=(8, 16), cache_dir=tmp_path / "c", mask_resize="nearest")
    a, b = exact.load_array(0), legacy.load_array(0)
    assert exact.cache.dir.name == "v2_8x16" and legacy.cache.dir.name == "v1_8x16"
    assert np.array_equal(a, preprocess_sample(exact.samples[0], (8, 16)))
    assert np.array_equal(b, preprocess_sample(exact.samples[0], (8, 16), "nearest"))
    assert not np.array_equal(a[..., 3], b[..., 3])  # 16 -> 8 rows: centres pick the odd rows, corners the even
    umask = os.umask(0o022)
    os.umask(umask)
    mode = exact.cache.path_for(exact.samples[0]).stat().st_mode & 0o777
    assert mode == 0o666 & ~umask  # as open() makes it (mkstemp alone: 0600, unreadable in a shared cache)
    with pytest.raises(CitysegError, match="mask_resize 'bilinear'"):
        CityscapesSegmentation(tiny, "train", size=(8, 16), mask_resize="bilinear").load_array(0)


def test_augment_modes(tiny):
    plain = CityscapesSegmentation(tiny, "train", size=(16, 32))
    replace = CityscapesSegmentation(tiny, "train", size=(16, 32), augment="replace")
    augment = CityscapesSegmentation(tiny, "train", size=(16, 32), augment="augment")
    assert len(plain) == len(replace) == 3 and len(augment) == 6
    torch.manual_seed(0)
    assert torch.equal(augment[0][0], plain[0][0])  # originals first
    changed = [not torch.equal(augment[3 + i % 3][0], plain[i % 3][0]) for i in range(6)]
    assert any(changed)  # transformed copies after
    for ds in (replace, augment):
        img, mask, _ = ds[len(ds) - 1]
        assert img.shape == (3, 16, 32) and mask.shape == (16, 32)
        assert set(mask.unique().tolist()) <= {0, 1, 2, 8, 10, 13, 255}
    with pytest.raises(CitysegError, match="augment 'both'"):
        CityscapesSegmentation(tiny, "train", augment="both")


def test_cache_hits_and_invalidation(tiny, tmp_path):
    ds = CityscapesSegmentation(tiny, "train", size=(8, 16), cache_dir=tmp_path / "c")
    first = ds.load_array(0)
    entry = ds.cache.path_for(ds.samples[0])
    assert entry.is_file() and np.array_equal(np.load(entry), first)
    assert np.array_equal(first, preprocess_sample(ds.samples[0], (8, 16)))
    # a hit reads only the cache: break the source and it is not touched
    mtime = entry.stat().st_mtime_ns
    assert np.array_equal(ds.load_array(0), first) and entry.stat().st_mtime_ns == mtime
    # a changed source gets a new entry; the stale one is never read
    label = np.full((H, W), 23, np.uint8)
    _frame(tiny, "train", "aa", 0, label=label)
    os.utime(ds.samples[0].label, ns=(mtime + 10**9, mtime + 10**9))
    assert ds.cache.path_for(ds.samples[0]) != entry
    assert (ds.load_array(0)[..., 3] == 10).all()  # sky
    # a half-written file is never trusted: a garbage entry is rebuilt
    ds.cache.path_for(ds.samples[1]).write_bytes(b"\x93NUMPY garbage")
    assert np.array_equal(ds.load_array(1), preprocess_sample(ds.samples[1], (8, 16)))


def _build_all(args):
    root, cache_dir = args
    ds = CityscapesSegmentation(root, "train", size=(8, 16), cache_dir=cache_dir)
    return [ds.load_array(i).tobytes() for i in range(len(ds.samples))]


def test_cache_concurrent_builders(tiny, tmp_path):
    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_build_all, [(tiny, tmp_path / "c")] * 6))
    assert all(r == results[0] for r in results)
    entries = list((tmp_path / "c").rglob("*"))
    assert not [e for e in entries if e.suffix == ".tmp"]
    assert len([e for e in entries if e.suffix == ".npy"]) == 3


def test_subsets_are_deterministic_and_nested():
    a = subset_indices(100, 0.25, seed=3)
    assert a == subset_indices(100, 25, seed=3) and len(a) == 25
    assert set(subset_indices(100, 12, seed=3)) <= set(a) <= set(subset_indices(100, 50, seed=3))
    assert subset_indices(100, 25, seed=4) != a
    assert subset_indices(5, None) == list(range(5)) and subset_indices(5, 1.0) == list(range(5))
    for bad in (0, 1.5, -2, "x"):
        with pytest.raises(CitysegError, match=f"^subset (count |fraction )?{re.escape(repr(bad))} must be"):
            subset_indices(10, bad)


def test_dataset_subset(tiny):
    ds = CityscapesSegmentation(tiny, "train", size=(8, 16), subset=2, subset_seed=1)
    assert len(ds) == 2 and [s.id for s in ds.samples] == sorted(s.id for s in ds.samples)


def test_unlabelled_split(tiny):
    for i in range(2):
        _frame(tiny, "test", "cc", i)
    ds = CityscapesSegmentation(tiny, "test", size=(8, 16), labels=False)
    _, mask, _ = ds[0]
    assert (mask == 255).all()


def test_cli_runs_as_a_console_script(tiny):
    exe = Path(sys.executable).parent / "cityseg"
    out = subprocess.run([str(exe), "check-data", "--root", str(tiny / "missing")], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("cityseg check-data: error:") and "Traceback" not in out.stderr


def test_a_16_bit_grayscale_image_is_scaled_not_clipped_to_white(tmp_path):
    """PIL's own RGB conversion of mode I;16 clips at 255 (a white frame); read_image scales it."""
    from cityseg_lib.data.images import read_image

    gray16 = (np.arange(16 * 64).reshape(16, 64) * 64).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    Image.fromarray((gray16 // 257).astype(np.uint8)).save(tmp_path / "g8.png")
    rgb16, rgb8 = read_image(tmp_path / "g16.png"), read_image(tmp_path / "g8.png")
    assert rgb16.shape == (16, 64, 3) and rgb16.dtype == np.uint8
    assert (rgb16[..., 0] == rgb16[..., 2]).all() and int(np.abs(rgb16.astype(int) - rgb8).max()) <= 1
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(CitysegError, match=r"f.tiff: floating-point image \(mode F\)"):
        read_image(tmp_path / "f.tiff")
