"""Training on random crops (``crop_size``, ``crop_class_balance``) and the per-epoch validation subset.

Crops are cut from the ``image_size`` sample (after augmentation), the mask with the image, padding
scored as ignore; they come from torch's generator, which ``fit`` re-seeds every epoch, so a run is
reproducible and an extended run equals a straight one. Evaluation always sees whole samples, and
the final full-resolution evaluation every validation frame, whatever ``max_val_images`` says.
"""

from __future__ import annotations

import json

import pytest
import torch

from cityseg_lib.config import load_config
from cityseg_lib.data.dataset import CityscapesSegmentation
from cityseg_lib.data.labels import IGNORE_INDEX
from cityseg_lib.data.transforms import random_crop
from cityseg_lib.errors import CitysegError
from cityseg_lib.train import engine


def _pair(h=12, w=20):
    image = torch.arange(3 * h * w, dtype=torch.int32).reshape(3, h, w)
    mask = (torch.arange(h * w) % 7).reshape(h, w).to(torch.uint8)
    return image, mask


def test_crop_has_the_size_and_cuts_image_and_mask_at_the_same_place():
    image, mask = _pair()
    torch.manual_seed(0)
    for _ in range(20):
        img, msk = random_crop(image, mask, (5, 8))
        assert img.shape == (3, 5, 8) and msk.shape == (5, 8)
        flat = int(img[0, 0, 0])  # image values encode their (y, x): find the window's corner
        top, left = divmod(flat, 20)
        assert torch.equal(img, image[:, top:top + 5, left:left + 8])
        assert torch.equal(msk, mask[top:top + 5, left:left + 8])


def test_crop_larger_than_the_sample_pads_with_zero_and_ignore():
    image, mask = _pair(4, 6)
    img, msk = random_crop(image, mask, (6, 10))
    assert img.shape == (3, 6, 10) and msk.shape == (6, 10)
    assert torch.equal(img[:, :4, :6], image) and torch.equal(msk[:4, :6], mask)
    assert (msk[4:, :] == IGNORE_INDEX).all() and (msk[:, 6:] == IGNORE_INDEX).all()
    assert (img[:, 4:, :] == 0).all() and (img[:, :, 6:] == 0).all()
    with pytest.raises(CitysegError, match="crop size"):
        random_crop(image, mask, (0, 4))


def test_crops_repeat_under_the_same_seed_and_differ_across_seeds():
    image, mask = _pair(32, 48)

    def draw(seed):
        torch.manual_seed(seed)
        return [random_crop(image, mask, (8, 8), class_balance=0.5)[0] for _ in range(5)]

    assert all(torch.equal(a, b) for a, b in zip(draw(3), draw(3)))
    assert not all(torch.equal(a, b) for a, b in zip(draw(3), draw(4)))


def test_class_balanced_crops_find_a_rare_class():
    image = torch.zeros(3, 64, 64, dtype=torch.uint8)
    mask = torch.zeros(64, 64, dtype=torch.uint8)
    mask[60, 61] = 5  # one pixel of a rare class in a corner
    mask[0, :] = IGNORE_INDEX  # ignore is never a class to centre on

    def hits(balance):
        torch.manual_seed(0)
        return sum(bool((random_crop(image, mask, (8, 8), balance)[1] == 5).any()) for _ in range(200))

    assert hits(0.0) < 20  # uniform corners: the window rarely covers it (~1 in 57)
    assert 70 < hits(1.0) < 130  # centred on a uniformly drawn class: road or the rare one, half each


def test_dataset_crops_training_items_only(demo_root):
    whole = CityscapesSegmentation(demo_root, "train", size=(32, 64))
    crops = CityscapesSegmentation(demo_root, "train", size=(32, 64), crop_size=(16, 24), augment="augment")
    assert len(crops) == 2 * len(whole)
    values = set()
    for i in range(len(crops)):
        img, msk, sid = crops[i]
        assert img.shape == (3, 16, 24) and msk.shape == (16, 24) and sid == whole[i % len(whole)][2]
        values |= set(msk.unique().tolist())
    sample_values = set(torch.cat([whole[i][1].flatten() for i in range(len(whole))]).unique().tolist())
    assert values <= sample_values | {IGNORE_INDEX}  # nearest-neighbour masks: no invented ids


def test_config_checks_crop_keys():
    assert load_config(None, ["image_size=[32, 64]", "crop_size=[16, 64]"]).crop_size == (16, 64)
    with pytest.raises(CitysegError, match=r"crop_size=\[16, 80\] must fit in image_size=\[32, 64\]"):
        load_config(None, ["image_size=[32, 64]", "crop_size=[16, 80]"])
    with pytest.raises(CitysegError, match="crop_size"):
        load_config(None, ["crop_size=[0, 8]"])
    with pytest.raises(CitysegError, match="crop_class_balance"):
        load_config(None, ["crop_class_balance=1.5"])
    # the Swin V2 encoder is built for one input size: crops would be magnified to it, validation not
    with pytest.raises(CitysegError, match=r"crop_size=\[16, 32\] with model swin2_jnet: its encoder takes one "
                                           r"input size, image_size=\[32, 64\]; leave crop_size unset"):
        load_config(None, ["model=swin2_jnet", "image_size=[32, 64]", "crop_size=[16, 32]"])
    assert load_config(None, ["model=swin2_jnet", "image_size=[32, 64]", "crop_size=[32, 64]"]).crop_size == (32, 64)


def _cfg(demo_root, runs, name, **extra):
    base = {"name": name, "profile": "test", "runs_dir": str(runs), "data_root": str(demo_root),
            "image_size": "[32, 64]", "crop_size": "[16, 32]", "crop_class_balance": 0.5, "model": "simple_fcn",
            "model_options": "{base_width: 4}", "epochs": 2, "batch_size": 2, "lr": 0.01, "step_size": 1,
            "max_val_images": 1, "progress": "false"}
    base.update(extra)
    return load_config(None, [f"{k}={v}" for k, v in base.items()])


def test_fit_on_crops_is_reproducible_and_scores_every_val_frame(demo_root, tmp_path):
    from cityseg_lib import runstore

    a = engine.fit(_cfg(demo_root, tmp_path / "a", "a"))
    b = engine.fit(_cfg(demo_root, tmp_path / "b", "a", epochs=1))
    b = engine.fit(_cfg(demo_root, tmp_path / "b", "a"), resume=True)  # extended to 2 epochs
    ma, mb = runstore.load_metrics(a), runstore.load_metrics(b)
    for col in ("train_loss", "val_loss", "val_miou"):
        assert list(ma[col]) == list(mb[col]), col
    summary = json.loads((a / "summary.json").read_text())
    assert summary["val_images"] == 1  # the per-epoch validation subset
    val = CityscapesSegmentation(demo_root, "val", size=(32, 64))
    ids, matrices = runstore.load_per_image(a)
    assert sorted(ids) == sorted(s.id for s in val.samples) and len(matrices) == len(val) > 1  # the whole split
