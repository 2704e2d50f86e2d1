"""A procedurally drawn street-scene dataset in the official Cityscapes layout.

``make_demo_dataset(OUT)`` writes ``OUT/leftImg8bit``, ``OUT/gtFine`` and ``OUT/gtCoarse`` with the
official folder and file names, so the whole project (data checks, training, evaluation, the
notebooks) runs without the real data, which needs a registration to download.

Each frame is a street seen by a pinhole camera over a flat ground plane: road with markings,
kerbs and sidewalks, building rows with windows, walls, fences, hedges, trees, grass, poles, signs,
traffic lights, people, riders, cars, trucks, buses, trams, bicycles and motorcycles, perspective
scaled and drawn far to near so they occlude each other, plus the void ego-vehicle hood. Every
piece is rasterised once into a map of *part ids* (:class:`.canvas.Canvas`); the image and every label
PNG are table look-ups of that one map, so labels and pixels align exactly. Colours of different
classes overlap on purpose (grey road / sidewalk / wall / building / car, green trees / grass /
painted facades), so a model needs shape and context, not just pixel colour.

Reproducibility: frame ``i`` of a split is drawn from ``default_rng([seed, split, i])`` and each
city's palette from ``default_rng([seed, 101, city])``; nothing depends on run order, so any
``workers`` gives byte-identical PNGs (fixed zlib level, no timestamps).

Modules: :mod:`.canvas` (projection, colours, the part-id canvas), :mod:`.style` (cities and their
palettes), :mod:`.buildings`, :mod:`.furniture`, :mod:`.people`, :mod:`.vehicles` (what is drawn),
:mod:`.scene` (one street and its pixels: :func:`render_frame`) and :mod:`.writer` (the files:
:func:`make_demo_dataset`).
"""

from cityseg_lib.data.demo.scene import DemoFrame, render_frame
from cityseg_lib.data.demo.style import DEMO_CITIES
from cityseg_lib.data.demo.writer import DEMO_VERSION, check_demo_args, make_demo_dataset

__all__ = ["DEMO_CITIES", "DEMO_VERSION", "DemoFrame", "render_frame", "make_demo_dataset", "check_demo_args"]
