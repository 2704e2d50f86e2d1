"""The label table against torchvision's and cityscapesScripts' copies of the official one."""

import numpy as np
from torchvision.datasets import Cityscapes

from cityseg_lib.data import labels as L


def test_table_matches_torchvision():
    tv = {c.id: c for c in Cityscapes.classes}
    assert len(L.LABELS) == len(Cityscapes.classes) == 35
    for lb in L.LABELS:
        c = tv[lb.id]
        assert (c.name, c.train_id, c.category, c.category_id) == (lb.name, lb.train_id, lb.category, lb.category_id)
        assert (c.has_instances, c.ignore_in_eval, tuple(c.color)) == (lb.has_instances, lb.ignore_in_eval, lb.color)


def test_table_matches_cityscapesscripts():
    from cityscapesscripts.helpers.labels import labels as official

    assert [(o.name, o.id, o.trainId, o.category, o.color) for o in official] == [
        (lb.name, lb.id, lb.train_id, lb.category, lb.color) for lb in L.LABELS
    ]


def test_train_classes_and_categories():
    assert L.NUM_CLASSES == 19 and L.IGNORE_INDEX == 255
    assert L.CLASS_NAMES[0] == "road" and L.CLASS_NAMES[-1] == "bicycle"
    assert len(L.CATEGORY_NAMES) == 7 and "void" not in L.CATEGORY_NAMES
    assert sorted(i for ids in L.CATEGORIES.values() for i in ids) == list(range(19))


def test_lookup_tables_round_trip():
    ids = np.arange(34, dtype=np.uint8)
    train = L.label_ids_to_train_ids(ids)
    assert train[7] == 0 and train[33] == 18 and train[0] == 255 and train[9] == 255  # parking is ignored
    evaluated = train != 255
    assert (L.train_ids_to_label_ids(train[evaluated]) == ids[evaluated]).all()
    assert L.train_ids_to_label_ids(np.array([255]))[0] == 0
    assert L.train_ids_to_color(np.array([[0, 255]])).tolist() == [[[128, 64, 128], [0, 0, 0]]]
