"""The official Cityscapes label table, defined once for the whole project.

Source: cityscapesScripts ``helpers/labels.py`` (Cordts et al., 2016). Ground-truth
PNGs store *labelIds* (0..33); training uses the 19 evaluated classes renumbered as
*trainIds* 0..18, with every other label mapped to :data:`IGNORE_INDEX`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "Label",
    "LABELS",
    "TRAIN_LABELS",
    "CLASS_NAMES",
    "CATEGORIES",
    "CATEGORY_NAMES",
    "TRAIN_ID_COLORS",
    "LABEL_ID_TO_TRAIN_ID",
    "TRAIN_ID_TO_LABEL_ID",
    "TRAIN_ID_TO_CATEGORY",
    "VALID_LABEL_IDS",
    "label_ids_to_train_ids",
    "train_ids_to_label_ids",
    "train_ids_to_color",
]

#: The one ignore value: in masks, in the loss, in the metric, in crop/pad fills.
IGNORE_INDEX = 255


class Label(NamedTuple):
    name: str
    id: int  # labelId as stored in *_gtFine_labelIds.png
    train_id: int  # 0..18, or IGNORE_INDEX (255); -1 for the license plate
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    Label("unlabeled",            0, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("ego vehicle",          1, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("rectification border", 2, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("out of roi",           3, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("static",               4, 255, "void",         0, False, True,  (0, 0, 0)),
    Label("dynamic",              5, 255, "void",         0, False, True,  (111, 74, 0)),
    Label("ground",               6, 255, "void",         0, False, True,  (81, 0, 81)),
    Label("road",                 7,   0, "flat",         1, False, False, (128, 64, 128)),
    Label("sidewalk",             8,   1, "flat",         1, False, False, (244, 35, 232)),
    Label("parking",              9, 255, "flat",         1, False, True,  (250, 170, 160)),
    Label("rail track",          10, 255, "flat",         1, False, True,  (230, 150, 140)),
    Label("building",            11,   2, "construction", 2, False, False, (70, 70, 70)),
    Label("wall",                12,   3, "construction", 2, False, False, (102, 102, 156)),
    Label("fence",               13,   4, "construction", 2, False, False, (190, 153, 153)),
    Label("guard rail",          14, 255, "construction", 2, False, True,  (180, 165, 180)),
    Label("bridge",              15, 255, "construction", 2, False, True,  (150, 100, 100)),
    Label("tunnel",              16, 255, "construction", 2, False, True,  (150, 120, 90)),
    Label("pole",                17,   5, "object",       3, False, False, (153, 153, 153)),
    Label("polegroup",           18, 255, "object",       3, False, True,  (153, 153, 153)),
    Label("traffic light",       19,   6, "object",       3, False, False, (250, 170, 30)),
    Label("traffic sign",        20,   7, "object",       3, False, False, (220, 220, 0)),
    Label("vegetation",          21,   8, "nature",       4, False, False, (107, 142, 35)),
    Label("terrain",             22,   9, "nature",       4, False, False, (152, 251, 152)),
    Label("sky",                 23,  10, "sky",          5, False, False, (70, 130, 180)),
    Label("person",              24,  11, "human",        6, True,  False, (220, 20, 60)),
    Label("rider",               25,  12, "human",        6, True,  False, (255, 0, 0)),
    Label("car",                 26,  13, "vehicle",      7, True,  False, (0, 0, 142)),
    Label("truck",               27,  14, "vehicle",      7, True,  False, (0, 0, 70)),
    Label("bus",                 28,  15, "vehicle",      7, True,  False, (0, 60, 100)),
    Label("caravan",             29, 255, "vehicle",      7, True,  True,  (0, 0, 90)),
    Label("trailer",             30, 255, "vehicle",      7, True,  True,  (0, 0, 110)),
    Label("train",               31,  16, "vehicle",      7, True,  False, (0, 80, 100)),
    Label("motorcycle",          32,  17, "vehicle",      7, True,  False, (0, 0, 230)),
    Label("bicycle",             33,  18, "vehicle",      7, True,  False, (119, 11, 32)),
    Label("license plate",       -1,  -1, "vehicle",      7, False, True,  (0, 0, 142)),
)
# fmt: on

#: The 19 evaluated classes, ordered by trainId.
TRAIN_LABELS: tuple[Label, ...] = tuple(
    sorted((lb for lb in LABELS if 0 <= lb.train_id < IGNORE_INDEX), key=lambda lb: lb.train_id)
)
NUM_CLASSES = len(TRAIN_LABELS)
CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in TRAIN_LABELS)

#: The 7 evaluated categories (void is never evaluated), ordered by category id.
CATEGORY_NAMES: tuple[str, ...] = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")
CATEGORIES: dict[str, tuple[int, ...]] = {
    cat: tuple(lb.train_id for lb in TRAIN_LABELS if lb.category == cat) for cat in CATEGORY_NAMES
}

#: (19, 3) uint8 palette indexed by trainId.
TRAIN_ID_COLORS = np.array([lb.color for lb in TRAIN_LABELS], dtype=np.uint8)

#: labelIds that may appear in a ground-truth labelIds PNG (0..33; -1 is never stored).
VALID_LABEL_IDS: frozenset[int] = frozenset(lb.id for lb in LABELS if lb.id >= 0)

#: (256,) uint8 lookup table labelId -> trainId; unknown ids map to IGNORE_INDEX.
LABEL_ID_TO_TRAIN_ID = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _lb in LABELS:
    if _lb.id >= 0 and 0 <= _lb.train_id < IGNORE_INDEX:
        LABEL_ID_TO_TRAIN_ID[_lb.id] = _lb.train_id

#: (256,) uint8 lookup table trainId -> labelId; IGNORE_INDEX maps to 0 ("unlabeled").
TRAIN_ID_TO_LABEL_ID = np.zeros(256, dtype=np.uint8)
for _lb in TRAIN_LABELS:
    TRAIN_ID_TO_LABEL_ID[_lb.train_id] = _lb.id

#: (19,) int64 category index (0..6, order of CATEGORY_NAMES) of each trainId.
TRAIN_ID_TO_CATEGORY = np.array([CATEGORY_NAMES.index(lb.category) for lb in TRAIN_LABELS], dtype=np.int64)

#: (34, 3) uint8 palette indexed by labelId (the official *_gtFine_color.png colours).
LABEL_ID_COLORS = np.zeros((256, 3), dtype=np.uint8)
for _lb in LABELS:
    if _lb.id >= 0:
        LABEL_ID_COLORS[_lb.id] = _lb.color
del _lb


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a uint8 labelId array (any shape) to trainIds, unknown ids -> IGNORE_INDEX."""
    return LABEL_ID_TO_TRAIN_ID[label_ids]


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map a trainId array (any shape, values 0..18 or 255) to official labelIds."""
    return TRAIN_ID_TO_LABEL_ID[np.asarray(train_ids, dtype=np.uint8)]


def train_ids_to_color(train_ids: np.ndarray) -> np.ndarray:
    """Colour a (H, W) trainId mask with the official palette -> (H, W, 3) uint8; ignore is black."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:NUM_CLASSES] = TRAIN_ID_COLORS
    return palette[np.asarray(train_ids, dtype=np.uint8)]
