"""A procedurally drawn street-scene dataset in the official Cityscapes layout.

``make_demo_dataset(OUT)`` writes ``OUT/leftImg8bit``, ``OUT/gtFine`` and ``OUT/gtCoarse`` with the
official folder and file names, so the whole project (data checks, training, evaluation, the
notebooks) runs without the real data, which needs a registration to download.

Each frame is a street seen by a pinhole camera over a flat ground plane: road with markings,
kerbs and sidewalks, building rows with windows, walls, fences, hedges, trees, grass, poles, signs,
traffic lights, people, riders, cars, trucks, buses, trams, bicycles and motorcycles, perspective
scaled and drawn far to near so they occlude each other, plus the void ego-vehicle hood. Every
piece is rasterised once into a map of *part ids* (:class:`_Canvas`); the image and every label
PNG are table look-ups of that one map, so labels and pixels align exactly. Colours of different
classes overlap on purpose (grey road / sidewalk / wall / building / car, green trees / grass /
painted facades), so a model needs shape and context, not just pixel colour.

Reproducibility: frame ``i`` of a split is drawn from ``default_rng([seed, split, i])`` and each
city's palette from ``default_rng([seed, 101, city])``; nothing depends on run order, so any
``workers`` gives byte-identical PNGs (fixed zlib level, no timestamps).
"""

from __future__ import annotations

import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from .errors import CitysegError
from .labels import LABEL_ID_COLORS, LABELS

__all__ = ["DEMO_CITIES", "DEMO_VERSION", "DemoFrame", "render_frame", "make_demo_dataset"]

#: Bumped whenever the drawing changes, so a README names the generator that made the files.
DEMO_VERSION = 1

#: Made-up city names per split (none is a Cityscapes city); val and test cities are disjoint from
#: train, as in the real dataset. Frame ``i`` of a split belongs to city ``i % len(cities)``.
DEMO_CITIES: dict[str, tuple[str, ...]] = {
    "train": ("eichenfurt", "falkenried", "hasenfeld", "kieselbach"),
    "val": ("lindwasser", "mooshagen"),
    "test": ("rabenstedt", "sonnenbruck"),
    "train_extra": ("tannwald", "wolkenberg"),
}
_ALL_CITIES = tuple(c for cities in DEMO_CITIES.values() for c in cities)
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2, "train_extra": 3}
_FRAME_NO = 19  # the annotated frame of each real 30-frame snippet
# Fixed PNG settings (byte-identical output depends on them): zlib level 1 with the run-length
# strategy is as fast as plain level 1 and ~10% smaller (images) to ~50% smaller (labels).
_PNG = {"compress_level": 1, "compress_type": 3}
_README_MARK = "cityseg synthetic demo dataset"
_ZNEAR = 0.5  # metres: polygons are clipped to Z >= this before projection

# labelIds drawn here (official values, see labels.py)
_EGO, _STATIC, _DYNAMIC, _GROUND = 1, 4, 5, 6
_ROAD, _SIDEWALK, _PARKING, _RAIL = 7, 8, 9, 10
_BUILDING, _WALL, _FENCE, _POLE, _LIGHT, _SIGN = 11, 12, 13, 17, 19, 20
_VEG, _TERRAIN, _SKY = 21, 22, 23
_PERSON, _RIDER, _CAR, _TRUCK, _BUS, _TRAIN, _MOTO, _BIKE = 24, 25, 26, 27, 28, 31, 32, 33
_HAS_INSTANCES = frozenset(lb.id for lb in LABELS if lb.has_instances and lb.id >= 0)

# Materials: amplitudes of fine (1 px), medium (~4 px) and large (~50 px) luminance noise, and
# whether cast shadows darken it (ground only: shadows are drawn on the ground plane).
_MATERIALS = {
    "flat": (0.02, 0.01, 0.03, 0),
    "sky": (0.004, 0.03, 0.16, 0),
    "asphalt": (0.10, 0.05, 0.09, 1),
    "paving": (0.06, 0.03, 0.06, 1),
    "plaster": (0.035, 0.02, 0.07, 0),
    "glass": (0.015, 0.01, 0.15, 0),
    "foliage": (0.14, 0.30, 0.08, 0),
    "grass": (0.16, 0.08, 0.12, 1),
    "paint": (0.015, 0.006, 0.06, 0),
    "cloth": (0.05, 0.03, 0.0, 0),
    "concrete": (0.08, 0.05, 0.10, 1),
    "gravel": (0.20, 0.07, 0.06, 1),
    "ego": (0.01, 0.0, 0.02, 0),
}
_MAT = {name: i for i, name in enumerate(_MATERIALS)}
_MAT_TABLE = np.array(list(_MATERIALS.values()), dtype=np.float32)  # (M, 4)

_CIRCLE = np.exp(1j * np.linspace(0, 2 * np.pi, 17)[:-1])  # unit circle, 16 points
_Color = tuple  # (r, g, b) floats


# ----------------------------------------------------------------------------- geometry helpers
def _qx(x: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
    """(4, 3) quad in the vertical plane X = x (a facade or car side along the street)."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]], dtype=float)


def _qz(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """(4, 3) quad in the vertical plane Z = z (faces the camera)."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def _qg(x0: float, x1: float, z0: float, z1: float, y: float = 0.0) -> np.ndarray:
    """(4, 3) horizontal quad at height y (ground, sidewalk, roofs of low things)."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], dtype=float)


def _bill(cx: float, cz: float, uv) -> np.ndarray:
    """Billboard: 2-D points (u right, v up, metres) in the plane Z = cz around X = cx -> (N, 3)."""
    uv = np.asarray(uv, dtype=float).reshape(-1, 2)
    return np.column_stack([cx + uv[:, 0], uv[:, 1], np.full(len(uv), cz)])


def _local(cx: float, cz: float, heading: float, uv) -> np.ndarray:
    """Points in the vertical plane through (cx, cz) along ``heading`` (0 = away from camera)."""
    uv = np.asarray(uv, dtype=float).reshape(-1, 2)
    return np.column_stack([cx + uv[:, 0] * math.sin(heading), uv[:, 1], cz + uv[:, 0] * math.cos(heading)])


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """(16, 2) ellipse outline in 2-D (u, v) coordinates."""
    return np.column_stack([cx + rx * _CIRCLE.real, cy + ry * _CIRCLE.imag])


def _clip_near(P: np.ndarray, zn: float) -> np.ndarray:
    """Clip a world polygon (N, 3) to Z >= zn (Sutherland-Hodgman against one plane)."""
    z = P[:, 2]
    if z.min() >= zn:
        return P
    if z.max() < zn:
        return P[:0]
    out = []
    for i in range(len(P)):
        a, b = P[i], P[(i + 1) % len(P)]
        if a[2] >= zn:
            out.append(a)
        if (a[2] >= zn) != (b[2] >= zn):
            out.append(a + (zn - a[2]) / (b[2] - a[2]) * (b - a))
    return np.array(out)


def _jit(rng: np.random.Generator, rgb, s: float) -> _Color:
    """Colour ``rgb`` with Gaussian jitter of ``s`` grey levels per channel, clipped to 0..255."""
    return tuple(float(min(255.0, max(0.0, c + rng.normal(0, s)))) for c in rgb)


def _grey(rng: np.random.Generator, lo: float, hi: float, tint: float = 4.0) -> _Color:
    g = rng.uniform(lo, hi)
    return tuple(float(min(255.0, max(0.0, g + rng.normal(0, tint)))) for _ in range(3))


def _scale(rgb, k: float) -> _Color:
    return tuple(min(255.0, c * k) for c in rgb)


# ----------------------------------------------------------------------------- the canvas
class _Canvas:
    """Rasterises world polygons (X right, Y up, Z forward; metres) into an (H, W) part-id map.

    A *part* is one flat-coloured piece (a window, a car side, a leaf cluster) with a colour
    (already lit and hazed by its depth), a material (its texture) and a label value (the labelId,
    or labelId*1000+k for instance classes, as in ``*_instanceIds.png``). Cast shadows go to a
    separate (H, W) uint8 layer.
    """

    def __init__(self, W: int, H: int, f: float, hy: float, vx: float, hc: float, sun, amb: float,
                 dif: float, haze: _Color, visibility: float):
        self.W, self.H, self.f, self.hy, self.vx, self.hc = W, H, f, hy, vx, hc
        self.sun, self.amb, self.dif = sun, amb, dif
        self.haze, self.visibility = haze, visibility
        self.parts = Image.new("I", (W, H), 0)
        self.draw = ImageDraw.Draw(self.parts)
        self.shadow = Image.new("L", (W, H), 0)
        self._sdraw = ImageDraw.Draw(self.shadow)
        self.colors: list[_Color] = [(0.0, 0.0, 0.0)]
        self.values: list[int] = [0]
        self.mats: list[int] = [0]
        self._counts: dict[int, int] = {}

    def instance(self, label_id: int) -> int:
        """Next instance value for ``label_id``: labelId*1000+k, or the labelId (no instances)."""
        if label_id not in _HAS_INSTANCES:
            return label_id
        k = self._counts.get(label_id, 0)
        self._counts[label_id] = k + 1
        return label_id * 1000 + k

    def light(self, n) -> float:
        """Lambertian factor for a surface with unit normal ``n``, 1.0 for sunlit ground."""
        d = max(0.0, n[0] * self.sun[0] + n[1] * self.sun[1] + n[2] * self.sun[2])
        return (self.amb + self.dif * d) / (self.amb + self.dif * self.sun[1])

    def part(self, rgb, value: int, mat: str, z: float | None = None, light: float = 1.0) -> int:
        r, g, b = rgb
        if z is not None:  # aerial perspective: far things fade to the horizon colour
            a = 1.0 - math.exp(-max(z, 0.0) / self.visibility)
            k, (hr, hg, hb) = light * (1 - a), self.haze
            self.colors.append((r * k + hr * a, g * k + hg * a, b * k + hb * a))
        else:
            self.colors.append((r * light, g * light, b * light))
        self.values.append(value)
        self.mats.append(_MAT[mat])
        return len(self.values) - 1

    def project(self, P: np.ndarray) -> tuple[list, float] | None:
        """World polygon (N, 3) -> (flat pixel list x0, y0, x1, ..., mean depth), or None if behind."""
        z = P[:, 2]
        if min(z.tolist()) < _ZNEAR:  # (Python's min is faster than numpy's on 4..16 values)
            P = _clip_near(P, _ZNEAR)
            if len(P) < 2:
                return None
            z = P[:, 2]
        inv = self.f / z
        xy = np.empty(2 * len(z))
        xy[0::2] = self.vx + P[:, 0] * inv
        xy[1::2] = self.hy - (P[:, 1] - self.hc) * inv
        return xy.tolist(), float(z.sum()) / len(z)

    def fill(self, P, rgb, value: int, mat: str, light: float = 1.0, pid: int | None = None) -> int:
        """Fill world polygon ``P`` with a new part (or part ``pid``); returns the part id."""
        r = self.project(np.asarray(P, dtype=float))
        if r is None or len(r[0]) < 6:
            return 0
        if pid is None:
            pid = self.part(rgb, value, mat, r[1], light)
        self.draw.polygon(r[0], fill=pid)
        return pid

    def line(self, P, rgb, value: int, mat: str, width_m: float, light: float = 1.0) -> None:
        """Polyline through world points ``P``, ``width_m`` metres wide (at least 1 pixel)."""
        r = self.project(np.asarray(P, dtype=float))
        if r is None:
            return
        xy, z = r
        pid = self.part(rgb, value, mat, z, light)
        self.draw.line(xy, fill=pid, width=max(1, int(round(self.f * width_m / z))))

    def cast(self, P) -> None:
        """Shade the ground under world polygon ``P``.

        All shadows share one strength (the sun's share of the light, or a soft ambient
        occlusion when overcast): the layer is painted, not blended, so equal values make
        overlapping shadows look right.
        """
        r = self.project(np.asarray(P, dtype=float))
        if r is not None and len(r[0]) >= 6:
            strength = 1.0 - self.amb / (self.amb + self.dif * self.sun[1]) if self.dif > 0.3 else 0.45
            self._sdraw.polygon(r[0], fill=int(255 * strength))

    def px(self, size_m: float, z: float) -> float:
        """Projected size in pixels of ``size_m`` metres at depth ``z``."""
        return self.f * size_m / max(z, _ZNEAR)

    def x_range(self, z: float, margin: float = 0.0) -> tuple[float, float]:
        """World X range visible at depth ``z`` (widened by ``margin`` metres)."""
        return (-self.vx * z / self.f - margin, (self.W - self.vx) * z / self.f + margin)


# ----------------------------------------------------------------------------- city style
class _Style(NamedTuple):
    facades: tuple  # facade palette of the city
    roof: _Color
    road: float  # asphalt grey level
    sidewalk: _Color
    marking: _Color
    green: _Color  # typical foliage colour
    veg: float  # 0..1: how leafy the streets are
    tram: float  # probability that a frame has a tram line
    tram_rgb: _Color
    bus_rgb: _Color
    floors: tuple[int, int]
    parking: float
    traffic: float
    people: float
    sunny: float
    hood: float  # ego-vehicle hood top, fraction of H
    hood_rgb: _Color


_FACADE_POOL = (
    (200, 192, 170), (225, 220, 205), (182, 182, 178), (150, 150, 152), (118, 116, 112), (190, 150, 95),
    (160, 82, 62), (132, 160, 118), (92, 116, 86), (115, 128, 145), (205, 176, 140), (170, 112, 92),
    (96, 96, 100), (210, 200, 120), (140, 170, 160), (228, 205, 180),
)


def _city_style(seed: int, city: str) -> _Style:
    """Palette and habits of one city, seeded by (seed, city) so every frame of it agrees."""
    rng = np.random.default_rng([seed, 101, _ALL_CITIES.index(city)])
    pool = rng.choice(len(_FACADE_POOL), size=6, replace=False)
    facades = tuple(_FACADE_POOL[i] for i in pool) + ((150, 150, 150),)  # every city has grey
    return _Style(
        facades=facades,
        roof=_jit(rng, ((150, 70, 55), (80, 80, 88), (120, 95, 80))[rng.integers(3)], 10),
        road=rng.uniform(70, 115),
        sidewalk=_jit(rng, ((150, 150, 148), (165, 130, 115), (175, 168, 150), (120, 122, 125))[rng.integers(4)], 8),
        marking=(235, 235, 230) if rng.random() < 0.7 else (230, 205, 120),
        green=_jit(rng, (78, 108, 45), 10),
        veg=rng.uniform(0.3, 1.0),
        tram=rng.uniform(0.08, 0.35),
        tram_rgb=_jit(rng, ((225, 200, 40), (200, 40, 40), (235, 235, 230), (40, 90, 170))[rng.integers(4)], 8),
        bus_rgb=_jit(rng, ((230, 225, 200), (220, 190, 40), (190, 40, 40), (60, 120, 200))[rng.integers(4)], 8),
        floors=(int(rng.integers(2, 4)), int(rng.integers(4, 8))),
        parking=rng.uniform(0.3, 0.9),
        traffic=rng.uniform(0.4, 1.0),
        people=rng.uniform(2.0, 6.0),
        sunny=rng.uniform(0.3, 0.8),
        hood=rng.uniform(0.82, 0.88),
        hood_rgb=_grey(rng, 15, 60, 2) if rng.random() < 0.7 else _grey(rng, 150, 200, 2),
    )


# ----------------------------------------------------------------------------- buildings & stuff
_DOORS = ((70, 50, 35), (45, 45, 48), (120, 40, 30))


def _facade(cv: _Canvas, rng, st: _Style, plane: str, c: float, a0: float, a1: float, h: float, rgb,
            shop: bool = True) -> None:
    """A building front ``h`` metres tall, with windows, from ``a0`` to ``a1`` metres along its row.

    ``plane`` "x": along the street in the plane X = c (a0, a1 are Z); "z": facing the camera in
    the plane Z = c (a0, a1 are X). Windows are skipped off-screen and below ~1.5 pixels, which
    keeps small frames fast.
    """
    if plane == "x":
        s = 1.0 if c > 0 else -1.0
        mk = lambda a, b, y0, y1, d: _qx(c - s * d, a, b, y0, y1)  # noqa: E731
        normal = (-s, 0.0, 0.0)
        x_on = cv.vx + cv.f * c / np.maximum(np.arange(a0, a1 + 3.0, 3.0), _ZNEAR)
    else:
        mk = lambda a, b, y0, y1, d: _qz(c - d, a, b, y0, y1)  # noqa: E731
        normal = (0.0, 0.0, -1.0)
        xr = cv.x_range(c, 3.0)
    lt = cv.light(normal)
    mat = "plaster" if rng.random() < 0.75 else "concrete"
    cv.fill(mk(a0, a1, 0, h, 0), rgb, _BUILDING, mat, lt)
    cv.fill(mk(a0, a1, 0, rng.uniform(0.3, 0.9), 0.005), _scale(rgb, rng.uniform(0.55, 0.8)), _BUILDING, "concrete", lt)
    cv.fill(mk(a0, a1, h - rng.uniform(0.3, 0.7), h, 0.01), _scale(rgb, rng.uniform(0.7, 1.2)), _BUILDING, mat, lt)
    gf, fh = rng.uniform(3.2, 4.4), rng.uniform(2.9, 3.5)
    sp = rng.uniform(2.2, 3.8)
    ww, wh, sill = rng.uniform(0.8, min(1.6, sp - 0.5)), rng.uniform(1.1, 1.8), rng.uniform(0.7, 1.0)
    dark = rng.random() < 0.6
    glass = _grey(rng, 30, 75, 6) if dark else _jit(rng, (130, 150, 170), 15)
    frame = _grey(rng, 200, 240, 3) if rng.random() < 0.6 else None
    if rng.random() < 0.4:  # string courses between floors
        band = _scale(rgb, rng.uniform(0.8, 1.15))
        for k in range(int((h - gf) / fh) + 1):
            cv.fill(mk(a0, a1, gf + k * fh - 0.25, gf + k * fh, 0.005), band, _BUILDING, mat, lt)
    a = a0 + rng.uniform(0.3, sp)
    while a + ww < a1 - 0.3:
        if plane == "x":
            z = max(a, _ZNEAR)
            hpx, wpx = cv.px(wh, z), cv.f * ww * abs(c) / z**2
            if hpx < 2.5 or wpx < 1.5:
                break
            on = 0 <= x_on[min(len(x_on) - 1, int((a - a0) / 3.0))] <= cv.W
        else:
            hpx = wpx = cv.px(min(ww, wh), c)
            if hpx < 2.5:
                break
            on = xr[0] <= a <= xr[1]
        if on:
            r = rng.random()  # ground floor: shop window, door or plain window
            if shop and r < 0.45:
                cv.fill(mk(a - 0.1, a + ww + 0.4, 0.4, gf - 0.7, 0.02), _jit(rng, glass, 12), _BUILDING, "glass", lt)
            elif r < 0.7:
                cv.fill(mk(a, a + 1.1, 0, 2.3, 0.02), _jit(rng, _DOORS[rng.integers(3)], 8), _BUILDING, "paint", lt)
            else:
                cv.fill(mk(a, a + ww, 1.1, min(gf - 0.5, 1.1 + wh), 0.02), _jit(rng, glass, 10), _BUILDING, "glass", lt)
            y0 = gf + sill
            while y0 + wh < h - 0.5:
                if frame is not None and min(hpx, wpx) >= 4:
                    cv.fill(mk(a - 0.08, a + ww + 0.08, y0 - 0.08, y0 + wh + 0.08, 0.01), frame, _BUILDING, "paint", lt)
                cv.fill(mk(a, a + ww, y0, y0 + wh, 0.02), _jit(rng, glass, 10), _BUILDING, "glass", lt)
                y0 += fh
        a += sp
    if shop and rng.random() < 0.35:  # a shop sign band over the ground floor
        s0 = rng.uniform(a0, max(a0, a1 - 4))
        cv.fill(mk(s0, s0 + rng.uniform(2, 6), gf - 0.65, gf - 0.1, 0.03),
                _jit(rng, ((200, 30, 30), (30, 60, 160), (230, 200, 40), (240, 240, 240), (30, 130, 60))[rng.integers(5)], 15),
                _BUILDING, "paint", lt)


def _building_row(cv: _Canvas, rng, st: _Style, s: int, x: float, z0: float, z1: float, skip, gaps: bool, tall: float):
    """Buildings in the plane X = x on side ``s`` (-1 left, +1 right) from z0 to z1."""
    z = z0
    shadows = []
    while z < z1:
        length = rng.uniform(8, 30)
        za, zb = z, min(z + length, z1)
        z = zb
        if skip is not None and zb > skip[0] and za < skip[1]:  # cross street: cut the building
            if za < skip[0]:
                zb = skip[0]
            else:
                z = skip[1]
                continue
        if gaps and rng.random() < 0.15:
            z += rng.uniform(3, 12)
            continue
        floors = rng.integers(st.floors[0], st.floors[1] + 1)
        h = (3.8 + (floors - 1) * 3.2 + rng.uniform(0, 1.5)) * tall
        rgb = _jit(rng, st.facades[rng.integers(len(st.facades))], 8)
        _facade(cv, rng, st, "x", x, za, zb, h, rgb, shop=gaps)
        if rng.random() < 0.5:  # pitched roof, its street-side slope is visible
            dr, rise = rng.uniform(3, 6), rng.uniform(2, 4)
            cv.fill(np.array([[x, h, za], [x, h, zb], [x + s * dr, h + rise, zb], [x + s * dr, h + rise, za]]),
                    _jit(rng, st.roof, 8), _BUILDING, "concrete", cv.light((-s * 0.6, 0.8, 0.0)))
        shadows.append((za, zb, h))
    return shadows


def _far_row(cv: _Canvas, rng, st: _Style, z: float, x0: float, x1: float, hmax: float) -> None:
    """A row of buildings in the plane Z = z facing the camera, from X = x0 to x1."""
    xa = x0
    while xa < x1:
        xb = min(xa + rng.uniform(10, 28), x1)
        h = rng.uniform(7, hmax)
        rgb = _jit(rng, st.facades[rng.integers(len(st.facades))], 8)
        _facade(cv, rng, st, "z", z, xa, xb, h, rgb, shop=True)
        xa = xb


def _skyline(cv: _Canvas, rng, st: _Style, z: float) -> None:
    """Distant buildings and tree lines on the horizon of an open street."""
    x0, x1 = cv.x_range(z, 20)
    x = x0
    while x < x1:
        w = rng.uniform(15, 80)
        if rng.random() < 0.5:
            cv.fill(_qz(z, x, x + w, 0, rng.uniform(6, 45)), _jit(rng, st.facades[rng.integers(len(st.facades))], 10),
                    _BUILDING, "plaster")
        else:
            xs = np.linspace(x, x + w, 9)
            top = rng.uniform(8, 22) + rng.uniform(-3, 3, 9)
            pts = [(xs[0], 0)] + list(zip(xs, top)) + [(xs[-1], 0)]
            cv.fill(_bill(0, z, pts), _jit(rng, st.green, 10), _VEG, "foliage")
        x += w


def _tree(cv: _Canvas, rng, st: _Style, x: float, z: float, scale: float = 1.0) -> None:
    """Trunk and a crown of overlapping blobs with lighter and darker leaf clusters."""
    th, tw, r = rng.uniform(1.8, 3.5) * scale, rng.uniform(0.2, 0.4) * scale, rng.uniform(1.4, 3.0) * scale
    cy = th + r * 0.8
    green = _jit(rng, st.green, 12)
    if rng.random() < 0.15:  # autumn
        green = _jit(rng, (140, 120, 40), 15)
    lt = cv.light((0.0, 0.3, -0.95))
    cv.fill(_bill(x, z, [(-tw / 2, 0), (tw / 2, 0), (tw / 3, cy), (-tw / 3, cy)]), _grey(rng, 50, 90, 8), _VEG, "concrete", lt)
    for _ in range(int(rng.integers(4, 9)) if cv.px(r, z) >= 4 else 1):
        bx, by, br = rng.normal(0, 0.45 * r), cy + rng.normal(0, 0.3 * r), rng.uniform(0.45, 0.75) * r
        cv.fill(_bill(x, z + 0.01, _ellipse(bx, by, br, br * rng.uniform(0.8, 1.1))),
                _scale(green, 0.8 + 0.15 * (by - cy) / r), _VEG, "foliage", lt)
    if cv.px(0.3 * r, z) >= 5:
        for _ in range(int(rng.integers(8, 20))):
            bx, by, br = rng.normal(0, 0.5 * r), cy + rng.normal(0, 0.4 * r), rng.uniform(0.15, 0.32) * r
            cv.fill(_bill(x, z - 0.01, _ellipse(bx, by, br, br)), _scale(green, rng.uniform(0.7, 1.35)), _VEG, "foliage", lt)
    if cv.dif > 0.3:  # crown shadow on the ground, pushed away from the sun
        dx, dz = -cv.sun[0] / cv.sun[1] * cy, -cv.sun[2] / cv.sun[1] * cy
        pts = np.column_stack([x + dx + r * _CIRCLE.real, np.zeros(16), z + dz + r * 0.9 * _CIRCLE.imag])
        cv.cast(pts)


def _hedge(cv: _Canvas, rng, st: _Style, s: int, x: float, z0: float, z1: float) -> None:
    h = rng.uniform(0.6, 1.6)
    green = _jit(rng, st.green, 10)
    n = max(2, min(60, int((z1 - z0) / 0.6)))
    zs = np.linspace(z0, z1, n)
    top = h + rng.uniform(-0.12, 0.12, n)
    face = np.column_stack([np.full(n + 2, x), np.r_[0, top, 0], np.r_[z0, zs, z1]])
    if h < cv.hc:
        cv.fill(_qg(x, x + s * 0.8, z0, z1, h), _scale(green, 1.1), _VEG, "foliage", cv.light((0, 1, 0)))
    cv.fill(face, green, _VEG, "foliage", cv.light((-s, 0.0, 0.0)))


def _wall(cv: _Canvas, rng, st: _Style, s: int, x: float, z0: float, z1: float) -> None:
    h = rng.uniform(0.5, 2.6)
    rgb = _grey(rng, 95, 175, 5) if rng.random() < 0.7 else _jit(rng, st.facades[rng.integers(len(st.facades))], 8)
    lt = cv.light((-s, 0.0, 0.0))
    if h < cv.hc:
        cv.fill(_qg(x, x + s * 0.25, z0, z1, h), _scale(rgb, 1.1), _WALL, "concrete", cv.light((0, 1, 0)))
    cv.fill(_qx(x, z0, z1, 0, h), rgb, _WALL, "concrete", lt)
    cv.fill(_qx(x - s * 0.01, z0, z1, h - 0.12, h), _scale(rgb, 1.15), _WALL, "concrete", lt)
    if rng.random() < 0.5:  # stains / posters make walls look less like plain building
        for _ in range(int(rng.integers(1, 4))):
            za = rng.uniform(z0, max(z0, z1 - 2))
            cv.fill(_qx(x - s * 0.02, za, za + rng.uniform(0.8, 2.5), 0.1, rng.uniform(0.3, h * 0.9)),
                    _scale(rgb, rng.uniform(0.75, 0.9)), _WALL, "concrete", lt)


def _fence(cv: _Canvas, rng, st: _Style, s: int, x: float, z0: float, z1: float) -> None:
    """Posts, rails and bars/slats; bars too dense to resolve are drawn as one mesh face."""
    h = rng.uniform(0.9, 2.0)
    rgb = (_grey(rng, 30, 70, 3), _jit(rng, (45, 75, 55), 8), _grey(rng, 120, 170, 4), _jit(rng, (120, 90, 60), 10))[rng.integers(4)]
    lt = cv.light((-s, 0.0, 0.0))
    pitch = rng.uniform(0.12, 0.3)
    post = rng.uniform(2.0, 3.0)
    z = z0
    while z < z1:
        zb = min(z + post, z1)
        if cv.f * pitch * abs(x) / z**2 < 3 or cv.px(0.05, z) < 0.6:
            cv.fill(_qx(x, z, zb, 0.05, h), _scale(rgb, 1.1), _FENCE, "flat", lt)
        else:
            cv.line(np.array([[x, 0.1, z], [x, 0.1, zb]]), rgb, _FENCE, "paint", 0.04, lt)
            cv.line(np.array([[x, h - 0.05, z], [x, h - 0.05, zb]]), rgb, _FENCE, "paint", 0.04, lt)
            for zz in np.arange(z + pitch / 2, zb, pitch):
                cv.line(np.array([[x, 0.05, zz], [x, h, zz]]), rgb, _FENCE, "paint", 0.03, lt)
        cv.fill(_qx(x - s * 0.02, z - 0.04, z + 0.04, 0, h + 0.05), _scale(rgb, 0.9), _FENCE, "paint", lt)
        z = zb


# ----------------------------------------------------------------------------- street furniture
def _pole(cv: _Canvas, x: float, z: float, h: float, w: float, rgb, y0: float = 0.0) -> None:
    cv.fill(_qz(z, x - w / 2, x + w / 2, y0, h), rgb, _POLE, "paint", cv.light((0.0, 0.0, -1.0)))


def _lamp(cv: _Canvas, rng, s: int, x: float, z: float) -> None:
    h, w = rng.uniform(5, 9), rng.uniform(0.14, 0.26)
    rgb = _grey(rng, 80, 170, 4) if rng.random() < 0.7 else _jit(rng, (40, 70, 55), 6)
    _pole(cv, x, z, h, w, rgb)
    arm = rng.uniform(0.8, 2.0)
    cv.line(np.array([[x, h - 0.1, z], [x - s * arm, h + 0.15, z]]), rgb, _POLE, "paint", w * 0.6)
    cv.fill(_qz(z - 0.05, x - s * arm - 0.35, x - s * arm + 0.35, h, h + 0.22), _grey(rng, 60, 200, 3), _POLE, "paint")


def _sign_plate(cv: _Canvas, rng, x: float, z: float, yc: float, front: bool) -> None:
    r = rng.uniform(0.3, 0.45)
    v = _SIGN
    if not front:  # the back of a sign is grey metal, still labelled traffic sign
        cv.fill(_bill(x, z, _ellipse(0, yc, r, r) if rng.random() < 0.6 else [(-r, yc - r), (r, yc - r), (r, yc + r), (-r, yc + r)]),
                _grey(rng, 110, 170, 3), v, "paint", cv.light((0, 0, -1)))
        return
    kind = rng.integers(6)
    red, white, blue, yellow = (200, 30, 35), (235, 235, 235), (30, 80, 170), (240, 200, 30)
    if kind == 0:  # prohibitory: red ring, white disc
        cv.fill(_bill(x, z, _ellipse(0, yc, r, r)), red, v, "paint")
        cv.fill(_bill(x, z - 0.01, _ellipse(0, yc, r * 0.75, r * 0.75)), white, v, "paint")
    elif kind == 1:  # mandatory: blue disc, white arrow
        cv.fill(_bill(x, z, _ellipse(0, yc, r, r)), blue, v, "paint")
        cv.fill(_bill(x, z - 0.01, [(-0.1 * r, yc - 0.6 * r), (0.1 * r, yc - 0.6 * r), (0.1 * r, yc + 0.1 * r),
                                    (0.35 * r, yc + 0.1 * r), (0, yc + 0.6 * r), (-0.35 * r, yc + 0.1 * r), (-0.1 * r, yc + 0.1 * r)]),
                white, v, "paint")
    elif kind == 2:  # warning triangle
        cv.fill(_bill(x, z, [(-r, yc - 0.8 * r), (r, yc - 0.8 * r), (0, yc + r)]), red, v, "paint")
        cv.fill(_bill(x, z - 0.01, [(-0.65 * r, yc - 0.6 * r), (0.65 * r, yc - 0.6 * r), (0, yc + 0.55 * r)]), white, v, "paint")
    elif kind == 3:  # priority diamond
        cv.fill(_bill(x, z, [(0, yc - r), (r, yc), (0, yc + r), (-r, yc)]), white, v, "paint")
        cv.fill(_bill(x, z - 0.01, [(0, yc - 0.65 * r), (0.65 * r, yc), (0, yc + 0.65 * r), (-0.65 * r, yc)]), yellow, v, "paint")
    elif kind == 4:  # blue information rectangle (parking, crossing)
        cv.fill(_bill(x, z, [(-r, yc - r), (r, yc - r), (r, yc + r), (-r, yc + r)]), blue, v, "paint")
        cv.fill(_bill(x, z - 0.01, [(-0.3 * r, yc - 0.5 * r), (0.3 * r, yc - 0.5 * r), (0.3 * r, yc + 0.5 * r), (-0.3 * r, yc + 0.5 * r)]),
                white, v, "paint")
    else:  # direction sign: wide yellow or white board
        cv.fill(_bill(x, z, [(-2.2 * r, yc - 0.8 * r), (2.2 * r, yc - 0.8 * r), (2.2 * r, yc + 0.8 * r), (-2.2 * r, yc + 0.8 * r)]),
                (yellow, white)[rng.integers(2)], v, "paint")


def _sign_post(cv: _Canvas, rng, x: float, z: float, front: bool) -> None:
    h = rng.uniform(2.4, 3.4)
    _pole(cv, x, z + 0.02, h, rng.uniform(0.07, 0.1), _grey(rng, 120, 180, 3))
    _sign_plate(cv, rng, x, z, h - 0.1, front)
    if rng.random() < 0.35:
        _sign_plate(cv, rng, x, z, h - 1.0, front)


def _traffic_light(cv: _Canvas, rng, x: float, z: float, y0: float, front: bool) -> None:
    """Housing with three lamps (one lit); seen from the back it is a dark box."""
    w, h = 0.32, 0.9
    housing = _grey(rng, 20, 45, 2) if rng.random() < 0.8 else _jit(rng, (200, 170, 40), 10)
    lt = cv.light((0, 0, -1))
    cv.fill(_bill(x, z, [(-w / 2, y0), (w / 2, y0), (w / 2, y0 + h), (-w / 2, y0 + h)]), housing, _LIGHT, "paint", lt)
    if not front:
        return
    if rng.random() < 0.5:  # yellow-striped backplate
        cv.fill(_bill(x, z + 0.01, [(-w, y0 - 0.05), (w, y0 - 0.05), (w, y0 + h + 0.05), (-w, y0 + h + 0.05)]),
                (40, 40, 40), _LIGHT, "paint", lt)
        cv.fill(_bill(x, z, [(-w / 2, y0), (w / 2, y0), (w / 2, y0 + h), (-w / 2, y0 + h)]), housing, _LIGHT, "paint", lt)
    lit = rng.integers(3)
    for k, (on, off) in enumerate((((60, 230, 130), (20, 50, 30)), ((250, 180, 40), (60, 45, 15)), ((250, 50, 40), (60, 18, 15)))):
        cv.fill(_bill(x, z - 0.01, _ellipse(0, y0 + 0.15 + 0.3 * k, 0.1, 0.1)), on if k == lit else off, _LIGHT, "flat")


def _light_pole(cv: _Canvas, rng, s: int, x: float, z: float, front: bool, arm_to: float | None) -> None:
    h = rng.uniform(3.0, 4.2) if arm_to is None else rng.uniform(5.5, 6.5)
    rgb = _grey(rng, 90, 160, 3)
    _pole(cv, x, z + 0.03, h, 0.16, rgb)
    _traffic_light(cv, rng, x, z, h - 1.0 if arm_to is None else 2.2, front)
    if arm_to is not None:  # mast arm over the road with a second head
        cv.line(np.array([[x, h - 0.2, z + 0.03], [arm_to, h - 0.2, z + 0.03]]), rgb, _POLE, "paint", 0.12)
        _traffic_light(cv, rng, arm_to, z, h - 1.2, front)


def _static_thing(cv: _Canvas, rng, x: float, z: float) -> None:
    """Void street furniture: bins, bollards, benches, advertising columns (label static)."""
    kind = rng.integers(4)
    lt = cv.light((0, 0, -1))
    if kind == 0:
        rgb = (_grey(rng, 60, 120), _jit(rng, (40, 90, 60), 8), _jit(rng, (220, 120, 30), 10))[rng.integers(3)]
        cv.fill(_qz(z, x - 0.3, x + 0.3, 0, 1.0), rgb, _STATIC, "paint", lt)
        cv.fill(_qz(z - 0.01, x - 0.33, x + 0.33, 0.9, 1.05), _scale(rgb, 0.8), _STATIC, "paint", lt)
    elif kind == 1:
        for dx in (-0.8, 0.0, 0.8)[: rng.integers(1, 4)]:
            cv.fill(_qz(z, x + dx - 0.07, x + dx + 0.07, 0, 0.9), _grey(rng, 90, 200), _STATIC, "paint", lt)
    elif kind == 2:
        wood = _jit(rng, (130, 95, 60), 10)
        cv.fill(_qz(z, x - 0.9, x + 0.9, 0.42, 0.5), wood, _STATIC, "paint", lt)
        cv.fill(_qz(z + 0.3, x - 0.9, x + 0.9, 0.55, 0.9), wood, _STATIC, "paint", lt)
        for dx in (-0.8, 0.75):
            cv.fill(_qz(z - 0.01, x + dx - 0.05, x + dx + 0.05, 0, 0.45), (40, 40, 40), _STATIC, "paint", lt)
    else:
        cv.fill(_qz(z, x - 0.6, x + 0.6, 0, 2.9), _grey(rng, 150, 220), _STATIC, "paint", lt)
        for k in range(3):
            cv.fill(_qz(z - 0.01, x - 0.55, x + 0.55, 0.4 + 0.8 * k, 1.1 + 0.8 * k), _jit(rng, rng.uniform(30, 230, 3), 5),
                    _STATIC, "paint", lt)
        cv.fill(_qz(z - 0.02, x - 0.7, x + 0.7, 2.9, 3.2), (50, 60, 55), _STATIC, "paint", lt)


def _dynamic_thing(cv: _Canvas, rng, x: float, z: float) -> None:
    """Movable void things (a pushcart or stroller; label dynamic)."""
    rgb = _jit(rng, rng.uniform(30, 220, 3), 5)
    cv.fill(_qz(z, x - 0.35, x + 0.35, 0.3, 0.95), rgb, _DYNAMIC, "cloth")
    for dx in (-0.25, 0.25):
        cv.fill(_bill(x + dx, z - 0.01, _ellipse(0, 0.13, 0.12, 0.12)), (25, 25, 25), _DYNAMIC, "flat")


# ----------------------------------------------------------------------------- people
_CLOTHES = ((30, 30, 35), (60, 60, 65), (45, 60, 100), (120, 120, 125), (200, 195, 185), (150, 40, 40),
            (40, 80, 60), (170, 150, 110), (230, 230, 230), (90, 60, 40), (60, 50, 90), (210, 120, 40))
_SKIN = ((230, 190, 160), (200, 150, 115), (150, 100, 70), (100, 65, 45))
_HAIR = ((30, 25, 20), (90, 60, 30), (190, 160, 100), (140, 140, 140), (60, 40, 25))


def _outfit(rng) -> tuple:
    pick = lambda pal: _jit(rng, pal[rng.integers(len(pal))], 10)  # noqa: E731
    return pick(_CLOTHES), pick(_CLOTHES), pick(_SKIN), pick(_HAIR)


def _person(cv: _Canvas, rng, x: float, z: float, side_view: bool) -> None:
    """A pedestrian billboard: legs, torso, arms, head; walking stride when seen from the side."""
    h = rng.uniform(1.55, 1.95) if rng.random() < 0.9 else rng.uniform(1.0, 1.3)
    v = cv.instance(_PERSON)
    pants, top, skin, hair = _outfit(rng)
    lt = cv.light((0, 0, -1))
    hip, sho, half = 0.5 * h, 0.8 * h, (0.07 if side_view else 0.13) * h
    stride = rng.uniform(0.1, 0.35) * h * (1 if side_view else 0.15) * (1 if rng.random() < 0.5 else -1)
    for foot in (-stride / 2, stride / 2):
        c = 0.0 if side_view else math.copysign(0.05 * h, foot) if foot else 0.0
        cv.fill(_bill(x, z, [(c - 0.045 * h, hip), (c + 0.045 * h, hip), (foot + c + 0.035 * h, 0), (foot + c - 0.035 * h, 0)]),
                pants, v, "cloth", lt)
        cv.fill(_bill(x, z - 0.01, [(foot + c - 0.05 * h, 0), (foot + c + 0.05 * h, 0), (foot + c + 0.04 * h, 0.035 * h),
                                    (foot + c - 0.04 * h, 0.035 * h)]), (30, 28, 28), v, "cloth", lt)
    coat = rng.random() < 0.3
    hem = hip - (0.15 * h if coat else 0.02 * h)
    cv.fill(_bill(x, z - 0.02, [(-half * 0.85, hem), (half * 0.85, hem),
                                (half, sho), (-half, sho)]), top, v, "cloth", lt)
    for sgn in (-1, 1):
        swing = (stride * -sgn * 0.6) if side_view else sgn * 0.03 * h
        cv.fill(_bill(x, z - 0.03 if sgn > 0 else z + 0.01,
                      [(sgn * half - 0.03 * h, sho), (sgn * half + 0.03 * h, sho), (sgn * half + swing + 0.025 * h, 0.47 * h),
                       (sgn * half + swing - 0.025 * h, 0.47 * h)]), top, v, "cloth", lt)
    cv.fill(_bill(x, z - 0.02, [(-0.035 * h, sho - 0.01), (0.035 * h, sho - 0.01), (0.035 * h, 0.87 * h), (-0.035 * h, 0.87 * h)]),
            skin, v, "cloth", lt)
    cv.fill(_bill(x, z - 0.03, _ellipse(0, 0.925 * h, 0.06 * h, 0.07 * h)), skin, v, "cloth", lt)
    cv.fill(_bill(x, z - 0.04, _ellipse(0, 0.955 * h, 0.062 * h, 0.045 * h)), hair, v, "cloth", lt)
    if rng.random() < 0.3:  # bag
        sgn = 1 if rng.random() < 0.5 else -1
        cv.fill(_bill(x, z - 0.04, [(sgn * half, 0.45 * h), (sgn * (half + 0.12 * h), 0.45 * h),
                                    (sgn * (half + 0.12 * h), 0.6 * h), (sgn * half, 0.6 * h)]), _outfit(rng)[0], v, "cloth", lt)
    if cv.dif > 0.3:
        cv.cast(_qg(x - 0.3, x + 0.3, z - 0.2, z + 0.4))


# ----------------------------------------------------------------------------- two-wheelers
def _wheel(cv: _Canvas, x: float, z: float, heading: float, u: float, r: float, value: int, tyre, filled: bool) -> None:
    pts = _local(x, z, heading, _ellipse(u, r, r, r))
    if filled:
        cv.fill(pts, tyre, value, "flat")
        cv.fill(_local(x, z, heading, _ellipse(u, r, r * 0.5, r * 0.5)), (120, 120, 125), value, "paint")
    else:
        cv.line(np.vstack([pts, pts[:1]]), tyre, value, "flat", 0.045)
        for a, b in (((u - r, r), (u + r, r)), ((u, 0.0), (u, 2 * r))):  # two spokes
            cv.line(_local(x, z, heading, [a, b]), (110, 110, 110), value, "flat", 0.01)


def _two_wheeler(cv: _Canvas, rng, x: float, z: float, heading: float, motor: bool, rider: bool) -> None:
    """A bicycle or motorcycle in its vertical plane (thin from behind), optionally ridden."""
    back_view = abs(math.sin(heading)) < 0.5
    lab = _MOTO if motor else _BIKE
    v = cv.instance(lab)
    rgb = _jit(rng, ((25, 25, 28), (160, 30, 30), (40, 60, 140), (190, 190, 195), (30, 90, 50))[rng.integers(5)], 10)
    tyre = (22, 22, 24)
    r = 0.31 if motor else 0.34
    wb = 0.7 if motor else 0.53
    loc = lambda uv: _local(x, z, heading, uv)  # noqa: E731
    _wheel(cv, x, z, heading, -wb, r, v, tyre, motor)
    _wheel(cv, x, z, heading, wb, r, v, tyre, motor)
    if motor:
        cv.fill(loc([(-0.75, 0.55), (-0.45, 0.85), (0.05, 0.92), (0.35, 0.98), (0.55, 0.85), (0.4, 0.45), (0.05, 0.3), (-0.4, 0.4)]),
                rgb, v, "paint", cv.light((0, 0, -1)))
        cv.fill(loc([(-0.7, 0.85), (-0.1, 0.92), (-0.1, 1.0), (-0.65, 0.95)]), (30, 30, 30), v, "cloth")
        seat, handle = (-0.35, 0.95), (0.45, 1.1)
        if back_view:
            cv.fill(_bill(x, z - wb, [(-0.08, 0.0), (0.08, 0.0), (0.08, 0.6), (-0.08, 0.6)]), tyre, v, "flat")
            cv.fill(_bill(x, z - 0.4, [(-0.3, 0.45), (0.3, 0.45), (0.25, 1.0), (-0.25, 1.0)]), rgb, v, "paint")
            cv.fill(_bill(x, z - 0.6, [(-0.08, 0.75), (0.08, 0.75), (0.08, 0.82), (-0.08, 0.82)]), (220, 40, 40), v, "flat")
    else:
        seat, handle = (-0.22, 0.92), (0.45, 1.05)
        frame = [(-wb, r), (-0.02, 0.3), seat, (-wb, r)]
        cv.line(loc(frame), rgb, v, "paint", 0.04)
        cv.line(loc([(-0.02, 0.3), (0.4, 0.9), (0.2, 0.9), seat]), rgb, v, "paint", 0.04)
        cv.line(loc([(wb, r), (0.42, 0.95), handle]), rgb, v, "paint", 0.035)
        cv.line(loc([(seat[0] - 0.1, seat[1] + 0.03), (seat[0] + 0.1, seat[1] + 0.03)]), (30, 30, 30), v, "cloth", 0.06)
    if back_view:  # handlebar across the view
        hz = z + handle[0] * math.cos(heading)
        cv.line(_bill(x, hz, [(-0.3, handle[1]), (0.3, handle[1])]), (40, 40, 40), v, "paint", 0.035)
    if rider:
        _rider(cv, rng, x, z, heading, seat, handle, back_view, motor)


def _rider(cv: _Canvas, rng, x: float, z: float, heading: float, seat, handle, back_view: bool, motor: bool) -> None:
    v = cv.instance(_RIDER)
    pants, top, skin, hair = _outfit(rng)
    helmets = ((30, 30, 30), (230, 230, 230), (200, 40, 40), (40, 60, 150))
    head = _jit(rng, helmets[rng.integers(4)], 8) if motor or rng.random() < 0.4 else hair
    lt = cv.light((0, 0, -1))
    sy = seat[1] + 0.05
    if back_view:  # rider seen from behind or the front: a billboard over the bike
        zz = z + seat[0] * math.cos(heading) - 0.05
        for sgn in (-1, 1):
            cv.fill(_bill(x, zz, [(sgn * 0.05, sy), (sgn * 0.17, sy), (sgn * 0.16, 0.3), (sgn * 0.08, 0.3)]), pants, v, "cloth", lt)
            cv.fill(_bill(x, zz - 0.02, [(sgn * 0.17, sy + 0.5), (sgn * 0.23, sy + 0.45), (sgn * 0.3, handle[1]),
                                         (sgn * 0.25, handle[1])]), top, v, "cloth", lt)
        cv.fill(_bill(x, zz - 0.01, [(-0.17, sy), (0.17, sy), (0.21, sy + 0.55), (-0.21, sy + 0.55)]), top, v, "cloth", lt)
        cv.fill(_bill(x, zz - 0.02, _ellipse(0, sy + 0.7, 0.11, 0.13)), skin, v, "cloth", lt)
        cv.fill(_bill(x, zz - 0.03, _ellipse(0, sy + 0.75, 0.115, 0.09)), head, v, "cloth", lt)
        return
    loc = lambda uv: _local(x, z, heading, uv)  # noqa: E731
    hip = (seat[0], sy)
    sho = (seat[0] + 0.3, sy + 0.5)
    knee = (seat[0] + 0.35, sy - 0.2)
    cv.line(loc([hip, knee, (0.0, 0.3 if not motor else 0.45)]), pants, v, "cloth", 0.14)
    cv.fill(loc([(hip[0] - 0.12, hip[1]), (hip[0] + 0.12, hip[1] - 0.02), (sho[0] + 0.1, sho[1]), (sho[0] - 0.12, sho[1] + 0.03)]),
            top, v, "cloth", lt)
    cv.line(loc([sho, (handle[0] - 0.05, handle[1])]), top, v, "cloth", 0.09)
    cv.fill(loc(_ellipse(sho[0] + 0.08, sho[1] + 0.18, 0.11, 0.13)), skin, v, "cloth", lt)
    cv.fill(loc(_ellipse(sho[0] + 0.06, sho[1] + 0.23, 0.12, 0.09)), head, v, "cloth", lt)


# ----------------------------------------------------------------------------- vehicles
def _prism(cv: _Canvas, x0: float, x1: float, z0: float, L: float, away: bool, prof: np.ndarray, kinds, cols: dict,
           value: int, side: bool = True) -> None:
    """Extrude a convex side profile across X in [x0, x1] and draw its visible faces.

    ``prof`` (N, 2): counter-clockwise (s, y) points in metres, s = 0 at the vehicle's rear;
    ``away``: the rear faces the camera. Faces turned away from the camera are culled, so the
    visible faces of a convex prism never overlap and need no sorting.
    """
    s, y = prof[:, 0], prof[:, 1]
    Z = z0 + s if away else z0 + (L - s)
    if side and (x1 < 0 or x0 > 0):
        xs, nx = (x1, 1.0) if x1 < 0 else (x0, -1.0)
        cv.fill(np.column_stack([np.full(len(s), xs), y, Z]), cols["body"], value, "paint", cv.light((nx, 0.0, 0.0)))
    for i in range(len(prof)):
        j = (i + 1) % len(prof)
        ns, ny = y[j] - y[i], -(s[j] - s[i])  # outward normal of a counter-clockwise edge
        nz = ns if away else -ns
        ym, zm = (y[i] + y[j]) / 2, (Z[i] + Z[j]) / 2
        if ny * (cv.hc - ym) - nz * zm <= 1e-9:
            continue
        n = math.hypot(ny, nz)
        kind = kinds[i]
        cv.fill(np.array([[x0, y[i], Z[i]], [x1, y[i], Z[i]], [x1, y[j], Z[j]], [x0, y[j], Z[j]]]), cols[kind], value,
                "glass" if kind == "glass" else "paint", cv.light((0.0, ny / n, nz / n)))


class _Body(NamedTuple):
    """Where a vehicle is: lateral extent, nearest Z, length and direction."""

    x0: float
    x1: float
    z0: float
    L: float
    away: bool

    def z(self, s: float) -> float:
        return self.z0 + s if self.away else self.z0 + self.L - s

    def side(self) -> tuple[float, float] | None:
        if self.x1 < 0:
            return self.x1 + 0.02, 1.0
        if self.x0 > 0:
            return self.x0 - 0.02, -1.0
        return None


def _small(cv: _Canvas, b: _Body) -> bool:
    """True when details (windows, wheels, lamps) would be only a pixel or two: skip them."""
    return cv.px(0.4, b.z0) < 2.0


def _side_poly(cv: _Canvas, b: _Body, pts, rgb, value: int, mat: str) -> None:
    sd = b.side()
    if sd is None or _small(cv, b):
        return
    P = np.array([[sd[0], y, b.z(s)] for s, y in pts])
    cv.fill(P, rgb, value, mat, cv.light((sd[1], 0.0, 0.0)))


def _side_wheels(cv: _Canvas, b: _Body, ss, r: float, value: int) -> None:
    sd = b.side()
    if sd is None or _small(cv, b):
        return
    for s in ss:
        for rr, rgb in ((r, (22, 22, 24)), (r * 0.55, (110, 110, 115))):
            P = np.column_stack([np.full(16, sd[0]), r + rr * _CIRCLE.imag, b.z(s) + rr * _CIRCLE.real])
            cv.fill(P, rgb, value, "paint")


def _end_quad(cv: _Canvas, b: _Body, u0: float, u1: float, y0: float, y1: float, rgb, value: int, mat: str = "paint") -> None:
    """A detail on the end face toward the camera, u measured from the body's left edge."""
    if _small(cv, b):
        return
    cv.fill(_qz(b.z0 - 0.015, b.x0 + u0, b.x0 + u1, y0, y1), rgb, value, mat, cv.light((0, 0, -1)))


def _under(cv: _Canvas, b: _Body, value: int, h: float) -> None:
    """Tyres seen under the bumper and the dark shadow under the body."""
    for u0, u1 in ((0.05, 0.32), (b.x1 - b.x0 - 0.32, b.x1 - b.x0 - 0.05)):
        cv.fill(_qz(b.z0 + 0.8, b.x0 + u0, b.x0 + u1, 0, h), (22, 22, 24), value, "flat")
    dx = -cv.sun[0] / cv.sun[1] * 1.2 if cv.dif > 0.3 else 0.0
    cv.cast(_qg(b.x0 - 0.05 + min(dx, 0), b.x1 + 0.05 + max(dx, 0), b.z0 + 0.1, b.z0 + b.L))


_CAR_LOWER = np.array([(0.03, .12), (.97, .12), (1, .22), (1, .46), (.96, .6), (.04, .62), (0, .55), (0, .22)])
_CAR_LOWER_KINDS = ("dark", "dark", "body", "body", "body", "body", "body", "dark")
_CAR_CABIN = np.array([(.06, .6), (.8, .6), (.62, 1.0), (.18, 1.0)])
_CAR_CABIN_KINDS = ("body", "glass", "body", "glass")
_CAR_WINDOW = ((.1, .64), (.76, .64), (.6, .95), (.2, .95))
_CAR_COLORS = ((25, 25, 28), (50, 52, 56), (90, 92, 96), (175, 178, 182), (225, 225, 222), (150, 25, 30),
               (30, 50, 110), (35, 70, 45), (120, 120, 110), (200, 160, 60))


def _car(cv: _Canvas, rng, xc: float, z0: float, away: bool) -> None:
    L, Wd, H = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.95), rng.uniform(1.42, 1.75)
    v = cv.instance(_CAR)
    body = _jit(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))], 8)
    cols = {"body": body, "glass": _grey(rng, 25, 70, 5), "dark": (28, 28, 30)}
    b = _Body(xc - Wd / 2, xc + Wd / 2, z0, L, away)
    _under(cv, b, v, 0.45)
    _prism(cv, b.x0, b.x1, z0, L, away, _CAR_LOWER * (L, H), _CAR_LOWER_KINDS, cols, v)
    _prism(cv, b.x0 + 0.1, b.x1 - 0.1, z0, L, away, _CAR_CABIN * (L, H), _CAR_CABIN_KINDS, cols, v)
    _side_poly(cv, b._replace(x0=b.x0 + 0.1, x1=b.x1 - 0.1), [(s * L, y * H) for s, y in _CAR_WINDOW], cols["glass"], v, "glass")
    _side_poly(cv, b._replace(x0=b.x0 + 0.08, x1=b.x1 - 0.08), [(0.44 * L, 0.63 * H), (0.47 * L, 0.63 * H), (0.47 * L, 0.96 * H),
                                                                 (0.44 * L, 0.96 * H)], body, v, "paint")
    _side_wheels(cv, b, (0.18 * L, 0.8 * L), 0.32, v)
    lamp = (_jit(rng, (200, 30, 30), 10) if away else _grey(rng, 200, 245, 3))
    for u0 in (0.06, Wd - 0.34):
        _end_quad(cv, b, u0, u0 + 0.28, 0.4 * H, 0.52 * H, lamp, v, "flat")
    if not away:
        _end_quad(cv, b, 0.45, Wd - 0.45, 0.3 * H, 0.42 * H, (30, 30, 30), v)
    _end_quad(cv, b, Wd / 2 - 0.26, Wd / 2 + 0.26, 0.2 * H, 0.28 * H, (230, 230, 225), v, "flat")


_CARGO = ((230, 230, 228), (190, 190, 190), (60, 90, 150), (170, 40, 35), (220, 200, 60), (90, 90, 90))


def _truck(cv: _Canvas, rng, xc: float, z0: float, away: bool) -> None:
    L, Wd, Hb, Hc = rng.uniform(6.5, 10), 2.45, rng.uniform(3.0, 3.8), rng.uniform(2.6, 3.0)
    Lc = L - 2.3
    v = cv.instance(_TRUCK)
    cargo = _jit(rng, _CARGO[rng.integers(len(_CARGO))], 8)
    cab = _jit(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))], 8) if rng.random() < 0.5 else cargo
    b = _Body(xc - Wd / 2, xc + Wd / 2, z0, L, away)
    _under(cv, b, v, 0.9)
    parts = [
        (np.array([(Lc + 0.3, .55), (L, .55), (L, 1.5), (L - .35, Hc - .1), (L - .6, Hc), (Lc + .3, Hc)]),
         ("dark", "body", "glass", "body", "body", "body"), cab),
        (np.array([(0.2, .45), (L - .2, .45), (L - .2, .95), (0.2, .95)]), ("dark",) * 4, (35, 35, 38)),
        (np.array([(0, .95), (Lc, .95), (Lc, Hb), (0, Hb)]), ("body",) * 4, cargo),
    ]
    for prof, kinds, rgb in parts if away else parts[::-1]:
        _prism(cv, b.x0, b.x1, z0, L, away, prof, kinds, {"body": rgb, "glass": _grey(rng, 30, 60, 4), "dark": (35, 35, 38)}, v)
    _side_poly(cv, b, [(L - 1.5, 1.6), (L - 0.5, 1.6), (L - 0.65, Hc - 0.3), (L - 1.5, Hc - 0.3)], _grey(rng, 30, 60, 4), v, "glass")
    if rng.random() < 0.5:  # company lettering band
        _side_poly(cv, b, [(0.5, Hb * 0.55), (Lc - 0.5, Hb * 0.55), (Lc - 0.5, Hb * 0.75), (0.5, Hb * 0.75)],
                   _jit(rng, rng.uniform(20, 230, 3), 5), v, "paint")
    _side_wheels(cv, b, (1.0, 2.1, L - 1.3), 0.5, v)
    if away:
        _end_quad(cv, b, Wd / 2 - 0.02, Wd / 2 + 0.02, 1.0, Hb - 0.1, _scale(cargo, 0.7), v)
        for u0 in (0.08, Wd - 0.33):
            _end_quad(cv, b, u0, u0 + 0.25, 0.6, 0.75, (200, 30, 30), v, "flat")
    else:
        for u0 in (0.1, Wd - 0.45):
            _end_quad(cv, b, u0, u0 + 0.35, 0.7, 0.9, (230, 230, 220), v, "flat")


def _bus(cv: _Canvas, rng, xc: float, z0: float, away: bool, rgb, tram: bool = False) -> None:
    """A city bus, or (``tram=True``) a long articulated tram with a pantograph (label train)."""
    if tram:
        L, Wd, Hb, y0 = rng.uniform(22, 32), 2.4, rng.uniform(3.2, 3.5), 0.35
        v = cv.instance(_TRAIN)
    else:
        L, Wd, Hb, y0 = (rng.uniform(10.5, 13.5) if rng.random() < 0.8 else 18.0), 2.55, rng.uniform(2.9, 3.2), 0.35
        v = cv.instance(_BUS)
    glass = _grey(rng, 25, 60, 4)
    b = _Body(xc - Wd / 2, xc + Wd / 2, z0, L, away)
    _under(cv, b, v, 0.6)
    prof = np.array([(0.05, y0), (L - 0.05, y0), (L, y0 + 0.15), (L, Hb - 0.15), (L - 0.2, Hb), (0.2, Hb), (0, Hb - 0.15), (0, y0 + 0.15)])
    _prism(cv, b.x0, b.x1, z0, L, away, prof, ("dark", "dark", "body", "body", "body", "body", "body", "dark"),
           {"body": rgb, "glass": glass, "dark": (35, 35, 38)}, v)
    if tram or rng.random() < 0.5:  # contrasting lower band
        _side_poly(cv, b, [(0.1, y0 + 0.05), (L - 0.1, y0 + 0.05), (L - 0.1, 1.0), (0.1, 1.0)], _grey(rng, 170, 235, 3), v, "paint")
    s = 0.4
    while s + 1.2 < L - 2.0:
        _side_poly(cv, b, [(s, 1.2), (s + 1.15, 1.2), (s + 1.15, Hb - 0.4), (s, Hb - 0.4)], _jit(rng, glass, 6), v, "glass")
        s += 1.3
    _side_poly(cv, b, [(L - 1.9, 0.5), (L - 0.9, 0.5), (L - 0.9, Hb - 0.5), (L - 1.9, Hb - 0.5)], glass, v, "glass")
    if tram:
        for k in range(1, 3):  # articulation joints
            sj = L * k / 3
            _side_poly(cv, b, [(sj - 0.15, y0), (sj + 0.15, y0), (sj + 0.15, Hb), (sj - 0.15, Hb)], (40, 40, 40), v, "flat")
        zp = b.z(L / 2)
        cv.line(_bill(xc, zp, [(-0.6, Hb), (0, Hb + 1.0), (0.6, Hb)]), (50, 50, 50), v, "paint", 0.05)
        cv.line(_bill(xc, zp, [(-0.5, Hb + 1.0), (0.5, Hb + 1.0)]), (50, 50, 50), v, "paint", 0.05)
        _side_wheels(cv, b, (2.0, L / 2, L - 2.0), 0.35, v)
    else:
        _side_wheels(cv, b, (2.6, L - 2.7), 0.5, v)
    front = not away
    top = Hb - 0.35
    if front or tram:
        _end_quad(cv, b, 0.12, Wd - 0.12, 1.0, top, glass, v, "glass")
        _end_quad(cv, b, 0.3, Wd - 0.3, top - 0.02, Hb - 0.08, (30, 30, 30), v, "flat")
        _end_quad(cv, b, 0.6, Wd - 0.6, top + 0.05, Hb - 0.13, (240, 170, 40), v, "flat")
    else:
        _end_quad(cv, b, 0.3, Wd - 0.3, 1.9, top, glass, v, "glass")
        _end_quad(cv, b, 0.5, Wd - 0.5, 0.6, 1.2, _scale(rgb, 0.6), v)
    lamp = (230, 230, 220) if front else (200, 30, 30)
    for u0 in (0.12, Wd - 0.42):
        _end_quad(cv, b, u0, u0 + 0.3, 0.55, 0.75, lamp, v, "flat")


# ----------------------------------------------------------------------------- the scene
def _sky(cv: _Canvas, top, horizon) -> None:
    """Sky as 64 horizontal bands of a vertical gradient (clouds come from the texture pass)."""
    H = cv.H
    n = max(2, min(64, H // 8))
    for k in range(n):
        y0, y1 = H * k / n, H * (k + 1) / n
        t = min(1.0, max(0.0, (y0 + y1) / 2 / max(cv.hy, 1.0))) ** 1.6
        rgb = tuple(a * (1 - t) + b * t for a, b in zip(top, horizon))
        pid = cv.part(rgb, _SKY, "sky")
        cv.draw.rectangle([0, y0, cv.W, y1], fill=pid)


def _dashes(cv: _Canvas, x: float, w: float, z0: float, z1: float, dash: float, gap: float, rgb) -> None:
    zmax = min(z1, cv.f * w / 0.6)  # stop where a line gets thinner than ~0.6 px
    z = z0
    while z < zmax:
        cv.fill(_qg(x - w / 2, x + w / 2, z, z + dash), rgb, _ROAD, "paint")
        z += dash + gap


def _scene(cv: _Canvas, rng: np.random.Generator, st: _Style) -> tuple[float, float]:
    """Draw one street into ``cv``; returns the ego hood's (top y, bulge) in pixels."""
    f = cv.f
    sunny = cv.dif > 0.3
    objs: list[tuple[float, int, Callable[[], None]]] = []  # street things, drawn far to near

    def add(z: float, fn: Callable, *args) -> None:
        objs.append((z, len(objs), partial(fn, cv, rng, *args)))

    # --- cross-section: lanes, parking, sidewalks, setbacks, facade lines
    lw = rng.uniform(2.9, 3.5)
    n_same, n_onc = int(rng.choice((1, 1, 2))), int(rng.choice((0, 1, 1, 1, 2)))
    c0 = int(rng.integers(n_same)) * lw
    park = {s: rng.random() < st.parking for s in (-1, 1)}
    edge = {1: c0 + lw / 2 + 2.2 * park[1], -1: c0 - (n_same + n_onc - 0.5) * lw - 2.2 * park[-1]}
    same = [c0 - k * lw for k in range(n_same)]
    onc = [c0 - (n_same + k) * lw for k in range(n_onc)]
    sw = {s: rng.uniform(1.8, 4.8) for s in (-1, 1)}
    e_sw = {s: edge[s] + s * sw[s] for s in (-1, 1)}
    sb = {s: 0.0 if rng.random() < 0.4 else rng.uniform(1.5, 9.0) for s in (-1, 1)}
    e_fac = {s: e_sw[s] + s * sb[s] for s in (-1, 1)}
    e_back = {s: e_fac[s] + s * rng.uniform(8, 25) for s in (-1, 1)}
    far_row = rng.random() < 0.5
    z_end = rng.uniform(70, 260) if far_row else 600.0
    inter = (rng.uniform(16, 50), rng.uniform(9, 16)) if rng.random() < 0.45 else None
    tram_x = None
    if rng.random() < st.tram:
        tram_x = (onc or same)[0] if rng.random() < 0.5 else same[0]

    # --- sky and horizon
    if rng.random() < 0.6:
        top, hor = _jit(rng, (75, 125, 200), 15), _jit(rng, (185, 205, 225), 10)
    else:
        g = rng.uniform(150, 215)
        top, hor = _grey(rng, g - 25, g, 4), _grey(rng, g, g + 25, 4)
    cv.haze = hor
    _sky(cv, top, hor)
    if not far_row:
        _skyline(cv, rng, st, rng.uniform(700, 1500))

    # --- ground: road, parking, markings, rails, sidewalks, setbacks, intersection
    road = _grey(rng, st.road - 18, st.road + 18, 3)
    cv.fill(_qg(edge[-1], edge[1], _ZNEAR, z_end), road, _ROAD, "asphalt")
    for s in (-1, 1):
        if park[s] and rng.random() < 0.5:  # a distinct parking lane (void "parking")
            pr = _jit(rng, road, 10) if rng.random() < 0.5 else _jit(rng, st.sidewalk, 10)
            cv.fill(_qg(edge[s] - s * 2.2, edge[s], _ZNEAR, z_end), pr, _PARKING, "paving")
    for _ in range(int(rng.poisson(2.0))):  # repairs and manholes
        x, z = rng.uniform(edge[-1], edge[1]), rng.uniform(5, 60)
        if rng.random() < 0.5:
            patch = _qg(x - rng.uniform(0.5, 2), x + rng.uniform(0.5, 2), z, z + rng.uniform(1, 6))
            cv.fill(patch, _scale(road, rng.uniform(0.75, 1.2)), _ROAD, "asphalt")
        else:
            cv.fill(np.column_stack([x + 0.35 * _CIRCLE.real, np.zeros(16), z + 0.35 * _CIRCLE.imag]), (45, 45, 48), _ROAD, "concrete")
    if tram_x is not None:
        if rng.random() < 0.35:  # separate gravel bed: void "rail track"
            cv.fill(_qg(tram_x - 1.3, tram_x + 1.3, _ZNEAR, z_end), _jit(rng, (120, 105, 90), 10), _RAIL, "gravel")
        for dx in (-0.72, 0.72):
            cv.fill(_qg(tram_x + dx - 0.05, tram_x + dx + 0.05, _ZNEAR, z_end), _grey(rng, 150, 190, 2), _ROAD, "paint")
    mark = _jit(rng, st.marking, 5)
    for k in range(1, n_same):
        _dashes(cv, c0 - (k - 0.5) * lw, 0.12, rng.uniform(2, 8), z_end, 3.0, 6.0, mark)
    if n_onc:
        xm = c0 - (n_same - 0.5) * lw
        if rng.random() < 0.5:
            _dashes(cv, xm, 0.12, rng.uniform(2, 8), z_end, 4.0, 4.0, mark)
        else:
            cv.fill(_qg(xm - 0.06, xm + 0.06, _ZNEAR, z_end), mark, _ROAD, "paint")
    for k in range(1, n_onc):
        _dashes(cv, c0 - (n_same + k - 0.5) * lw, 0.12, rng.uniform(2, 8), z_end, 3.0, 6.0, mark)
    for s in (-1, 1):
        if not park[s] and rng.random() < 0.6:
            x = edge[s] - s * 0.35
            cv.fill(_qg(x - 0.06, x + 0.06, _ZNEAR, z_end), mark, _ROAD, "paint")
    kerb = _grey(rng, 140, 190, 3)
    tree_pits: list[tuple[int, float, float]] = []
    for s in (-1, 1):
        pave = _jit(rng, st.sidewalk, 6)
        cv.fill(_qx(edge[s], _ZNEAR, z_end, 0, 0.12), kerb, _SIDEWALK, "concrete", cv.light((-s, 0, 0)))
        cv.fill(_qg(edge[s], e_sw[s], _ZNEAR, z_end, 0.12), pave, _SIDEWALK, "paving")
        cv.fill(_qg(edge[s], edge[s] + s * 0.2, _ZNEAR, z_end, 0.12), kerb, _SIDEWALK, "concrete")
        joint = _scale(pave, 0.8)
        tl = rng.uniform(0.3, 1.0)
        z = 1.0
        while z < z_end and f * cv.hc * tl / z ** 2 > 3:  # paving joints while > 3 px apart
            cv.line(np.array([[edge[s], 0.12, z], [e_sw[s], 0.12, z]]), joint, _SIDEWALK, "paving", 0.015)
            z += tl
        for x in np.arange(edge[s] + s * tl, e_sw[s], s * tl)[:8]:
            cv.line(np.array([[x, 0.12, 1.0], [x, 0.12, min(z_end, 80)]]), joint, _SIDEWALK, "paving", 0.015)
        if sw[s] > 2.6 and rng.random() < st.veg:  # street trees in grass pits
            z = rng.uniform(4, 14)
            step = rng.uniform(10, 18)
            while z < min(z_end, 140):
                x = edge[s] + s * 1.1
                cv.fill(_qg(x - 0.7, x + 0.7, z - 0.7, z + 0.7, 0.13), _jit(rng, st.green, 15), _TERRAIN, "grass")
                tree_pits.append((s, x, z))
                z += step
        if sb[s] > 0:  # setback: grass, dirt, parking or more paving, strip by strip
            z = _ZNEAR
            while z < z_end:
                zb = min(z_end, z + rng.uniform(8, 40))
                kind = rng.choice(4, p=(0.5, 0.2, 0.1, 0.2))
                lab, mat, rgb = ((_TERRAIN, "grass", _jit(rng, st.green, 18) if rng.random() < 0.7 else _jit(rng, (140, 130, 70), 15)),
                                 (_GROUND, "gravel", _jit(rng, (130, 110, 85), 12)),
                                 (_PARKING, "asphalt", _grey(rng, 80, 130, 3)),
                                 (_SIDEWALK, "paving", _jit(rng, st.sidewalk, 8)))[kind]
                cv.fill(_qg(e_sw[s], e_back[s], z, zb, 0.12), rgb, lab, mat)
                z = zb
    if inter is not None:
        zi, wi = inter
        for s in (-1, 1):
            cv.fill(_qg(edge[s], s * 400, zi, zi + wi), road, _ROAD, "asphalt")
            for za, zb in ((zi - 3, zi), (zi + wi, zi + wi + 3)):
                cv.fill(_qg(e_sw[s], s * 400, za, zb, 0.12), _jit(rng, st.sidewalk, 6), _SIDEWALK, "paving")
        x = edge[-1] + 0.5
        while x < edge[1] - 0.5:  # zebra crossing
            cv.fill(_qg(x, x + 0.5, zi - 4.5, zi - 0.5), mark, _ROAD, "paint")
            x += 1.0
        cv.fill(_qg(edge[-1], edge[1], zi - 6.5, zi - 6.2), mark, _ROAD, "paint")

    # --- buildings: back rows (seen through gaps), cross street, far row, front rows
    skip = (inter[0], inter[0] + inter[1]) if inter else None
    for s in (-1, 1):
        _building_row(cv, rng, st, s, e_back[s], 1.0, min(z_end, 500), skip, False, 1.2)
    if inter is not None:
        zc = inter[0] + inter[1] + rng.uniform(2, 6)
        for s in (-1, 1):
            a, b = sorted((e_fac[s], s * 300))
            _far_row(cv, rng, st, zc, a, b, 22)
    if far_row:
        x0, x1 = cv.x_range(z_end, 10)
        _far_row(cv, rng, st, z_end, x0, x1, 30)
    for s in (-1, 1):
        if sb[s] > 0 and rng.random() < 0.35 * st.veg:  # a park instead of buildings: trees, no row
            for _ in range(int(rng.integers(3, 9))):
                _tree(cv, rng, st, e_fac[s] + s * rng.uniform(0, 15), rng.uniform(8, 120), rng.uniform(1.0, 1.6))
            continue
        for za, zb, h in _building_row(cv, rng, st, s, e_fac[s], 1.0, min(z_end, 500), skip, True, 1.0):
            if sunny and s * cv.sun[0] > 0:  # this side faces away from the sun and shades the street
                kx, kz = -cv.sun[0] / cv.sun[1] * h, -cv.sun[2] / cv.sun[1] * h
                cv.cast(np.array([[e_fac[s], 0, za], [e_fac[s], 0, zb], [e_fac[s] + kx, 0, zb + kz], [e_fac[s] + kx, 0, za + kz]]))

    # --- setback trees, then walls / fences / hedges along the sidewalk's outer edge
    for s in (-1, 1):
        if sb[s] > 1.5:
            for _ in range(int(rng.poisson(3 * st.veg))):
                _tree(cv, rng, st, e_sw[s] + s * rng.uniform(0.8, sb[s] - 0.5), rng.uniform(6, 90), rng.uniform(0.7, 1.2))
    for s in (-1, 1):
        if sb[s] <= 0:
            continue
        z = rng.uniform(1, 10)
        while z < min(z_end, 200):
            zb = z + rng.uniform(6, 40)
            if skip and zb > skip[0] - 3 and z < skip[1] + 3:
                zb = min(zb, skip[0] - 3)
                if zb <= z:
                    z = skip[1] + 3
                    continue
            kind = rng.choice(4, p=(0.3, 0.3, 0.25, 0.15))
            (_wall, _fence, _hedge, lambda *a: None)[kind](cv, rng, st, s, e_sw[s], z, zb)
            z = zb + (rng.uniform(0, 10) if rng.random() < 0.4 else 0)

    # --- street objects: poles, signs, lights, trees, people, two-wheelers, vehicles
    for s in (-1, 1):
        z = rng.uniform(3, 25)
        step = rng.uniform(18, 35)
        while z < min(z_end, 250):
            add(z, _lamp, s, edge[s] + s * rng.uniform(0.4, 0.7), z)
            z += step
    for s, x, z in tree_pits:
        add(z, _tree, st, x, z)
    for _ in range(int(rng.poisson(1.8))):
        s = 1 if rng.random() < 0.6 else -1
        z = rng.uniform(6, 70)
        add(z, _sign_post, edge[s] + s * rng.uniform(0.3, 0.8), z, s > 0 or rng.random() < 0.4)
    if inter is not None:
        zi = inter[0]
        for s in (-1, 1):
            z = zi - rng.uniform(0.5, 2.0)
            arm = edge[s] - s * rng.uniform(3, 5) if s > 0 and rng.random() < 0.5 else None
            add(z, _light_pole, s, edge[s] + s * 0.6, z, True, arm)
            z2 = zi + inter[1] + rng.uniform(0.5, 2)
            add(z2, _light_pole, s, edge[s] + s * 0.6, z2, rng.random() < 0.5, None)
    for _ in range(int(rng.poisson(0.4))):
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(8, 50)
        add(z, _light_pole, s, edge[s] + s * 0.5, z, True, None)
    n_people = int(rng.poisson(st.people))
    for _ in range(n_people):
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(6, 60)
        x = edge[s] + s * rng.uniform(0.5, max(0.6, sw[s] - 0.3))
        add(z, _person, x, z, rng.random() < 0.25)
    if inter is not None:
        for _ in range(int(rng.poisson(1.2))):
            z = inter[0] - rng.uniform(1, 4)
            x = rng.uniform(edge[-1] + 0.5, edge[1] - 0.5)
            add(z, _person, x, z, True)
    for _ in range(int(rng.poisson(1.3))):  # riders
        motor = rng.random() < 0.35
        if inter is not None and rng.random() < 0.3:
            z = inter[0] + rng.uniform(2, inter[1] - 2)
            x, head = rng.uniform(edge[-1] - 3, edge[1] + 3), (math.pi / 2 if rng.random() < 0.5 else -math.pi / 2)
        elif rng.random() < 0.7 or not onc:
            z, x, head = rng.uniform(7, 50), edge[1] - 2.2 * park[1] - rng.uniform(0.6, 1.2), rng.normal(0, 0.15)
        else:
            z, x, head = rng.uniform(10, 60), edge[-1] + 2.2 * park[-1] + rng.uniform(0.6, 1.2), math.pi + rng.normal(0, 0.15)
        add(z - 0.7, _two_wheeler, x, z, head, motor, True)
    for _ in range(int(rng.poisson(0.8))):  # parked bicycles (often several in a rack)
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(6, 40)
        head = s * rng.uniform(0.9, 1.5)
        for k in range(int(rng.integers(1, 4))):
            x = e_sw[s] - s * rng.uniform(0.5, 0.8)
            add(z + 0.8 * k - 0.7, _two_wheeler, x, z + 0.8 * k, head, False, False)
    for _ in range(int(rng.poisson(0.25))):  # parked motorcycles
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(6, 40)
        add(z - 0.8, _two_wheeler, edge[s] - s * 0.8, z, s * rng.uniform(0.3, 1.2), True, False)
    for _ in range(int(rng.poisson(1.0))):
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(5, 50)
        add(z, _static_thing, edge[s] + s * rng.uniform(0.5, max(0.6, sw[s] - 0.4)), z)
    for _ in range(int(rng.poisson(0.2))):
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(5, 40)
        add(z, _dynamic_thing, edge[s] + s * rng.uniform(0.5, max(0.6, sw[s] - 0.4)), z)

    def vehicle(x: float, z: float, away: bool, kinds=(0.85, 0.08, 0.07)) -> float:
        k = rng.choice(3, p=kinds)
        L = (4.9, 10.0, 13.5)[k]
        fn = (_car, _truck, lambda c, r, xc, z0, aw: _bus(c, r, xc, z0, aw, _jit(r, st.bus_rgb, 6)))[k]
        add(z, fn, x, z, away)
        return L

    for xl, away in [(x, True) for x in same] + [(x, False) for x in onc]:  # moving traffic
        z = rng.uniform(9, 30) if xl == 0 or not away else rng.uniform(4, 30)
        while z < min(z_end, 120) and rng.random() < 0.55 * st.traffic + 0.3:
            if tram_x is not None and abs(xl - tram_x) < 0.1 and rng.random() < 0.5:
                break
            L = vehicle(xl + rng.normal(0, 0.2), z, away)
            z += L + rng.uniform(4, 35)
    for s in (-1, 1):  # parked cars along the kerb
        if not park[s] and rng.random() < 0.5:
            continue
        z = rng.uniform(3, 12)
        x = edge[s] - s * 1.1
        while z < min(z_end, 110):
            if skip and skip[0] - 6 < z < skip[1] + 2:
                z = skip[1] + 2
                continue
            if rng.random() < st.parking:
                L = vehicle(x + rng.normal(0, 0.1), z, s > 0 or rng.random() < 0.5, (0.88, 0.08, 0.04))
                z += L + rng.uniform(0.6, 3)
            else:
                z += rng.uniform(3, 12)
    if tram_x is not None and rng.random() < 0.8:
        away = tram_x in same
        z = rng.uniform(12, 60)
        add(z, lambda c, r, xc, z0, aw: _bus(c, r, xc, z0, aw, _jit(r, st.tram_rgb, 6), tram=True), tram_x, z, away)

    for _, _, fn in sorted(objs, key=lambda o: (-o[0], o[1])):
        fn()

    # --- ego vehicle: the void hood at the bottom
    top, bulge = st.hood * cv.H, cv.H * 0.04
    xs = np.linspace(0, cv.W, 33)
    ys = top + bulge * ((xs - cv.W / 2) / (cv.W / 2)) ** 2
    pid = cv.part(st.hood_rgb, _EGO, "ego")
    cv.draw.polygon(list(zip(xs.tolist(), ys.tolist())) + [(cv.W, cv.H), (0, cv.H)], fill=pid)
    return top, bulge


# ----------------------------------------------------------------------------- pixels
def _noise(rng, step: int, W: int, H: int) -> np.ndarray:
    """Smooth noise: a coarse uniform grid, bilinear-upsampled to (H, W) float32, std ~0.5."""
    small = (rng.random((H // step + 3, W // step + 3), dtype=np.float32) - 0.5) * 2.5
    big = Image.fromarray(small).resize(((W // step + 3) * step, (H // step + 3) * step), Image.BILINEAR)
    return np.asarray(big)[step:step + H, step:step + W]


def _shade(cv: _Canvas, rng, tone, hood: tuple[float, float]) -> np.ndarray:
    """Turn the part map into an (H, W, 3) uint8 photo: colours, textures, shadows, hood, blur.

    Luminance is modulated per material by fine grain (also the sensor noise: it goes through
    the blur like real noise goes through demosaicing), clumpy medium noise and large blotches,
    then applied in 7-bit fixed point (uint16 is ~2x faster than float32 on these 6M values).
    """
    H, W = cv.H, cv.W
    P = np.asarray(cv.parts)
    bright, contrast, tint = tone
    colors = np.asarray(cv.colors, dtype=np.float32)
    colors = np.clip(((colors - 128) * contrast + 128) * bright * tint, 0, 255).astype(np.uint16)
    mats = np.take(np.asarray(cv.mats, dtype=np.uint8), P)
    amp = _MAT_TABLE.T.copy()  # (4, M)
    lum = rng.random((H, W), dtype=np.float32)
    lum -= 0.5
    lum *= np.take(amp[0] * 3.5, mats)
    lum += np.take(amp[1], mats) * _noise(rng, 4, W, H)
    lum += np.take(amp[2], mats) * _noise(rng, max(4, H // 20), W, H)
    lum += 1.0
    shadow = np.asarray(cv.shadow)
    if shadow.any():
        lum *= 1.0 - shadow * np.take(amp[3] / np.float32(255), mats)
    lum *= 128
    np.clip(lum, 0, 255, out=lum)  # factor < 2, so 255 * 255 still fits uint16
    rgb = np.take(colors, P, axis=0)
    rgb *= lum.astype(np.uint16)[..., None]
    rgb >>= 7
    np.minimum(rgb, 255, out=rgb)
    rgb = rgb.astype(np.uint8)
    # ego hood: a dim mirror image of the street above it
    top, bulge = hood
    y0 = int(top)
    if y0 < H:
        ys = np.arange(y0, H)[:, None]
        xs = np.arange(W)[None, :]
        edge = top + bulge * ((xs - W / 2) / (W / 2)) ** 2
        src = np.clip((2 * edge - ys - 1).astype(np.int64), 0, H - 1)
        refl = rgb[src, np.broadcast_to(xs, src.shape)].astype(np.float32)
        fade = (np.clip(1.0 - (ys - edge) / (0.25 * H), 0.0, 1.0) * 0.3).astype(np.float32)[..., None]
        block = rgb[y0:]
        mixed = (block * (1 - fade) + refl * fade).astype(np.uint8)
        ego = (mats[y0:] == _MAT["ego"])[..., None]
        rgb[y0:] = np.where(ego, mixed, block)
    # optics: a [1 2 1]/4 blur (box radius 0.5) at full size, half of it below 1024 px width
    img = Image.fromarray(rgb).filter(ImageFilter.BoxBlur(0.5 if W >= 1024 else 0.3))
    return np.asarray(img)


class DemoFrame(NamedTuple):
    """One rendered frame: (H, W, 3) uint8 image, (H, W) uint8 labelIds, (H, W) uint16 instanceIds."""

    city: str
    key: str
    image: np.ndarray
    label_ids: np.ndarray
    instance_ids: np.ndarray


def _frame_key(split: str, index: int) -> tuple[str, str]:
    cities = DEMO_CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{_FRAME_NO:06d}"


def render_frame(split: str, index: int, *, size: tuple[int, int] = (2048, 1024), seed: int = 0) -> DemoFrame:
    """Draw frame ``index`` of ``split`` at ``size`` = (W, H); depends only on (seed, split, index).

    The test split gets full labels here; :func:`make_demo_dataset` blanks them when writing.
    """
    if split not in _SPLIT_CODE:
        raise CitysegError(f"split {split!r} is not one of {sorted(_SPLIT_CODE)}")
    W, H = size
    city, key = _frame_key(split, index)
    st = _city_style(seed, city)
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], index])
    if rng.random() < st.sunny:
        el, a = rng.uniform(0.4, 1.0), rng.uniform(0, 2 * math.pi)
        sun, amb, dif = (math.cos(el) * math.cos(a), math.sin(el), math.cos(el) * math.sin(a)), 0.45, 0.9
    else:
        sun, amb, dif = (0.0, 1.0, 0.0), 1.0, 0.15
    cv = _Canvas(W, H, f=W * rng.uniform(0.95, 1.15), hy=H * rng.uniform(0.36, 0.47), vx=W * rng.uniform(0.44, 0.56),
                 hc=rng.uniform(1.15, 1.4), sun=sun, amb=amb, dif=dif, haze=(200, 210, 220), visibility=rng.uniform(250, 900))
    hood = _scene(cv, rng, st)
    tone = (rng.uniform(0.78, 1.15), rng.uniform(0.85, 1.12), np.array(rng.uniform(0.93, 1.07, 3), dtype=np.float32))
    image = _shade(cv, rng, tone, hood)
    P = np.asarray(cv.parts)
    inst = np.take(np.asarray(cv.values, dtype=np.int32), P)
    labels = np.where(inst >= 1000, inst // 1000, inst).astype(np.uint8)
    return DemoFrame(city, key, image, labels, inst.astype(np.uint16))


def _coarsen(inst: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coarse-style instanceIds: blocky regions inside objects, void (0) around their boundaries.

    A block of the (randomly shifted) grid keeps its value only if the whole block belongs to one
    instance; kept blocks that touch a dropped one are dropped at random, which leaves jagged
    void margins at boundaries and removes small things, like the real coarse polygons.
    """
    H, W = inst.shape
    b = max(2, int(round(H / 40)))
    oy, ox = int(rng.integers(b)), int(rng.integers(b))
    Hb, Wb = -(-(H + oy) // b), -(-(W + ox) // b)
    pad = np.pad(inst, ((oy, Hb * b - H - oy), (ox, Wb * b - W - ox)), mode="edge").reshape(Hb, b, Wb, b)
    lo, hi = pad.min(axis=(1, 3)), pad.max(axis=(1, 3))
    keep = lo == hi
    border = np.zeros_like(keep)
    border[1:] |= ~keep[:-1]
    border[:-1] |= ~keep[1:]
    border[:, 1:] |= ~keep[:, :-1]
    border[:, :-1] |= ~keep[:, 1:]
    keep &= ~(border & (rng.random(keep.shape) < 0.6))
    blocks = np.where(keep, lo, 0)
    return np.repeat(np.repeat(blocks, b, axis=0), b, axis=1)[oy:oy + H, ox:ox + W]


# ----------------------------------------------------------------------------- writing
_PALETTE = LABEL_ID_COLORS.tobytes()  # 256 RGB entries


def _save_labels(folder: Path, stem: str, inst: np.ndarray) -> None:
    """Write ``stem_{labelIds,color,instanceIds}.png`` from instanceIds like the official files."""
    labels = np.where(inst >= 1000, inst // 1000, inst).astype(np.uint8)
    Image.fromarray(labels).save(folder / f"{stem}_labelIds.png", **_PNG)
    color = Image.fromarray(labels)
    color.putpalette(_PALETTE)
    color.convert("RGBA").save(folder / f"{stem}_color.png", **_PNG)
    Image.fromarray(inst.astype(np.uint16)).save(folder / f"{stem}_instanceIds.png", **_PNG)


def _write_frames(root: str, jobs: list[tuple[str, int]], size: tuple[int, int], seed: int, coarse: bool) -> int:
    """Render and write frames (one worker's chunk); returns how many were written."""
    for split, index in jobs:
        fr = render_frame(split, index, size=size, seed=seed)
        img_dir = Path(root, "leftImg8bit", split, fr.city)
        img_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fr.image).save(img_dir / f"{fr.key}_leftImg8bit.png", **_PNG)
        if split != "train_extra":
            fine = fr.instance_ids
            if split == "test":  # like the real test set: nothing but the ego vehicle is labelled
                fine = np.where(fr.label_ids == _EGO, _EGO, 0).astype(np.uint16)
            d = Path(root, "gtFine", split, fr.city)
            d.mkdir(parents=True, exist_ok=True)
            _save_labels(d, f"{fr.key}_gtFine", fine)
        if coarse and split != "test":
            d = Path(root, "gtCoarse", split, fr.city)
            d.mkdir(parents=True, exist_ok=True)
            crng = np.random.default_rng([seed, _SPLIT_CODE[split], index, 1])
            _save_labels(d, f"{fr.key}_gtCoarse", _coarsen(fr.instance_ids.astype(np.int32), crng))
    return len(jobs)


def _readme(counts: dict[str, int], size: tuple[int, int], seed: int, coarse: bool) -> str:
    lines = [
        f"{_README_MARK} (generator version {DEMO_VERSION})",
        "",
        "NOT Cityscapes data: every image and label here was drawn procedurally by",
        "cityseg_lib.demo_data.make_demo_dataset (street scenes from a pinhole camera over a flat",
        "ground plane). The city names are made up. The folder and file names follow the official",
        "Cityscapes layout so the same code reads this and the real dataset.",
        "",
        f"Arguments: train={counts['train']} val={counts['val']} test={counts['test']} "
        f"train_extra={counts['train_extra']} size={size[0]}x{size[1]} seed={seed} coarse={coarse}",
        f"Regenerate: make_demo_dataset(OUT, train={counts['train']}, val={counts['val']}, test={counts['test']}, "
        f"train_extra={counts['train_extra']}, size=({size[0]}, {size[1]}), seed={seed}, coarse={coarse})",
        "The same arguments always give byte-identical files.",
        "",
        "Splits (frames: cities):",
    ]
    for split, n in counts.items():
        if n:
            lines.append(f"  {split}: {n}: {', '.join(DEMO_CITIES[split][:n])}")
    lines += ["", "The test split's gtFine labels are unusable on purpose (all 'unlabeled' except the ego",
              "vehicle), as in the real dataset; gtCoarse covers train, val and train_extra.", ""]
    return "\n".join(lines)


def _prepare_root(root: Path) -> None:
    """Refuse a non-empty folder, except an earlier demo dataset, whose files are replaced."""
    if root.exists() and not root.is_dir():
        raise CitysegError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        readme = root / "README.txt"
        if not (readme.is_file() and readme.read_text(errors="replace").startswith(_README_MARK)):
            raise CitysegError(f"{root}: folder is not empty and holds no demo dataset; choose a new or empty folder")
        for name in ("leftImg8bit", "gtFine", "gtCoarse"):
            shutil.rmtree(root / name, ignore_errors=True)
        readme.unlink()
    root.mkdir(parents=True, exist_ok=True)


def make_demo_dataset(out: str | os.PathLike, *, train: int = 24, val: int = 8, test: int = 4, train_extra: int = 0,
                      size: tuple[int, int] = (2048, 1024), seed: int = 0, coarse: bool = True, workers: int = 1,
                      progress: bool = False) -> Path:
    """Write a synthetic dataset in the official Cityscapes layout under ``out``; returns the root.

    ``size`` is (W, H). Frames go to ``leftImg8bit/SPLIT/CITY/CITY_SSSSSS_FFFFFF_leftImg8bit.png``
    with ``gtFine/.../*_gtFine_{labelIds,color,instanceIds}.png`` (test: unusable labels, as
    published) and, if ``coarse``, ``gtCoarse`` for train, val and ``train_extra`` frames. Output
    is byte-identical for the same arguments, whatever ``workers`` (processes) is. An existing
    demo dataset in ``out`` (recognised by its README.txt) is replaced; any other non-empty
    folder is refused. ``progress`` shows a tqdm bar over frames.
    """
    counts = {"train": train, "val": val, "test": test, "train_extra": train_extra}
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise CitysegError(f"{name}={n!r}: the number of frames must be an integer >= 0")
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and 16 <= v <= 8192 for v in size):
        raise CitysegError(f"size={size!r}: expected (W, H) integers between 16 and 8192")
    if train_extra and not coarse:
        raise CitysegError(f"train_extra={train_extra}: train_extra frames only have coarse labels; use coarse=True")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CitysegError(f"seed={seed!r}: expected an integer >= 0")
    if not isinstance(workers, int) or workers < 1:
        raise CitysegError(f"workers={workers!r}: expected an integer >= 1")
    size = (int(size[0]), int(size[1]))
    root = Path(out)
    _prepare_root(root)
    # README first: it marks the folder as a demo dataset, so an interrupted run can be redone
    (root / "README.txt").write_text(_readme(counts, size, seed, coarse), encoding="utf-8")
    jobs = [(split, i) for split, n in counts.items() for i in range(n)]
    with tqdm(total=len(jobs), disable=not progress, desc="demo data", unit="frame") as bar:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                bar.update(_write_frames(str(root), [job], size, seed, coarse))
        else:
            n_chunks = min(len(jobs), workers * 4)
            chunks = [jobs[k::n_chunks] for k in range(n_chunks)]
            with ProcessPoolExecutor(max_workers=min(workers, n_chunks)) as pool:
                futures = [pool.submit(_write_frames, str(root), c, size, seed, coarse) for c in chunks]
                for fut in as_completed(futures):
                    bar.update(fut.result())
    return root
