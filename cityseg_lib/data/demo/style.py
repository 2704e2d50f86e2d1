"""Made-up cities of the demo data and their looks: per-city palette and street habits."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cityseg_lib.data.demo.canvas import Color, grey, jit

#: Made-up city names per split (none is a Cityscapes city); val and test cities are disjoint from
#: train, as in the real dataset. Frame ``i`` of a split belongs to city ``i % len(cities)``.
DEMO_CITIES: dict[str, tuple[str, ...]] = {
    "train": ("eichenfurt", "falkenried", "hasenfeld", "kieselbach"),
    "val": ("lindwasser", "mooshagen"),
    "test": ("rabenstedt", "sonnenbruck"),
    "train_extra": ("tannwald", "wolkenberg"),
}
_ALL_CITIES = tuple(c for cities in DEMO_CITIES.values() for c in cities)


# ----------------------------------------------------------------------------- city style
class Style(NamedTuple):
    facades: tuple  # facade palette of the city
    roof: Color
    road: float  # asphalt grey level
    sidewalk: Color
    marking: Color
    green: Color  # typical foliage colour
    veg: float  # 0..1: how leafy the streets are
    tram: float  # probability that a frame has a tram line
    tram_rgb: Color
    bus_rgb: Color
    floors: tuple[int, int]
    parking: float
    traffic: float
    people: float
    sunny: float
    hood: float  # ego-vehicle hood top, fraction of H
    hood_rgb: Color


_FACADE_POOL = (
    (200, 192, 170), (225, 220, 205), (182, 182, 178), (150, 150, 152), (118, 116, 112), (190, 150, 95),
    (160, 82, 62), (132, 160, 118), (92, 116, 86), (115, 128, 145), (205, 176, 140), (170, 112, 92),
    (96, 96, 100), (210, 200, 120), (140, 170, 160), (228, 205, 180),
)


def city_style(seed: int, city: str) -> Style:
    """Palette and habits of one city, seeded by (seed, city) so every frame of it agrees."""
    rng = np.random.default_rng([seed, 101, _ALL_CITIES.index(city)])
    pool = rng.choice(len(_FACADE_POOL), size=6, replace=False)
    facades = tuple(_FACADE_POOL[i] for i in pool) + ((150, 150, 150),)  # every city has grey
    return Style(
        facades=facades,
        roof=jit(rng, ((150, 70, 55), (80, 80, 88), (120, 95, 80))[rng.integers(3)], 10),
        road=rng.uniform(70, 115),
        sidewalk=jit(rng, ((150, 150, 148), (165, 130, 115), (175, 168, 150), (120, 122, 125))[rng.integers(4)], 8),
        marking=(235, 235, 230) if rng.random() < 0.7 else (230, 205, 120),
        green=jit(rng, (78, 108, 45), 10),
        veg=rng.uniform(0.3, 1.0),
        tram=rng.uniform(0.08, 0.35),
        tram_rgb=jit(rng, ((225, 200, 40), (200, 40, 40), (235, 235, 230), (40, 90, 170))[rng.integers(4)], 8),
        bus_rgb=jit(rng, ((230, 225, 200), (220, 190, 40), (190, 40, 40), (60, 120, 200))[rng.integers(4)], 8),
        floors=(int(rng.integers(2, 4)), int(rng.integers(4, 8))),
        parking=rng.uniform(0.3, 0.9),
        traffic=rng.uniform(0.4, 1.0),
        people=rng.uniform(2.0, 6.0),
        sunny=rng.uniform(0.3, 0.8),
        hood=rng.uniform(0.82, 0.88),
        hood_rgb=grey(rng, 15, 60, 2) if rng.random() < 0.7 else grey(rng, 150, 200, 2),
    )
