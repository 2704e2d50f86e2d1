"""One demo frame: the street layout (:func:`_scene` places and draws everything), the pixel
shading of the part map, and :func:`render_frame`."""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import numpy as np

from cityseg_lib.errors import CitysegError
from cityseg_lib.data.demo.buildings import building_row, far_row, fence, hedge, skyline, tree, wall
from cityseg_lib.data.demo.canvas import (CIRCLE, EGO, GROUND, PARKING, RAIL, ROAD, SIDEWALK, SKY, TERRAIN, ZNEAR, Canvas,
                     grey, jit, qg, qx, scale)
from cityseg_lib.data.demo.shading import shade
from cityseg_lib.data.demo.style import DEMO_CITIES, Style, city_style
from cityseg_lib.data.demo.traffic import street_objects

SPLIT_CODE = {"train": 0, "val": 1, "test": 2, "train_extra": 3}
_FRAME_NO = 19  # the annotated frame of each real 30-frame snippet


# ----------------------------------------------------------------------------- the scene
def _sky(cv: Canvas, top, horizon) -> None:
    """Sky as 64 horizontal bands of a vertical gradient (clouds come from the texture pass)."""
    H = cv.H
    n = max(2, min(64, H // 8))
    for k in range(n):
        y0, y1 = H * k / n, H * (k + 1) / n
        t = min(1.0, max(0.0, (y0 + y1) / 2 / max(cv.hy, 1.0))) ** 1.6
        rgb = tuple(a * (1 - t) + b * t for a, b in zip(top, horizon))
        pid = cv.part(rgb, SKY, "sky")
        cv.draw.rectangle([0, y0, cv.W, y1], fill=pid)


def _dashes(cv: Canvas, x: float, w: float, z0: float, z1: float, dash: float, gap: float, rgb) -> None:
    zmax = min(z1, cv.f * w / 0.6)  # stop where a line gets thinner than ~0.6 px
    z = z0
    while z < zmax:
        cv.fill(qg(x - w / 2, x + w / 2, z, z + dash), rgb, ROAD, "paint")
        z += dash + gap


def _scene(cv: Canvas, rng: np.random.Generator, st: Style) -> tuple[float, float]:
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
    has_far_row = rng.random() < 0.5
    z_end = rng.uniform(70, 260) if has_far_row else 600.0
    inter = (rng.uniform(16, 50), rng.uniform(9, 16)) if rng.random() < 0.45 else None
    tram_x = None
    if rng.random() < st.tram:
        tram_x = (onc or same)[0] if rng.random() < 0.5 else same[0]

    # --- sky and horizon
    if rng.random() < 0.6:
        top, hor = jit(rng, (75, 125, 200), 15), jit(rng, (185, 205, 225), 10)
    else:
        g = rng.uniform(150, 215)
        top, hor = grey(rng, g - 25, g, 4), grey(rng, g, g + 25, 4)
    cv.haze = hor
    _sky(cv, top, hor)
    if not has_far_row:
        skyline(cv, rng, st, rng.uniform(700, 1500))

    # --- ground: road, parking, markings, rails, sidewalks, setbacks, intersection
    road = grey(rng, st.road - 18, st.road + 18, 3)
    cv.fill(qg(edge[-1], edge[1], ZNEAR, z_end), road, ROAD, "asphalt")
    for s in (-1, 1):
        if park[s] and rng.random() < 0.5:  # a distinct parking lane (void "parking")
            pr = jit(rng, road, 10) if rng.random() < 0.5 else jit(rng, st.sidewalk, 10)
            cv.fill(qg(edge[s] - s * 2.2, edge[s], ZNEAR, z_end), pr, PARKING, "paving")
    for _ in range(int(rng.poisson(2.0))):  # repairs and manholes
        x, z = rng.uniform(edge[-1], edge[1]), rng.uniform(5, 60)
        if rng.random() < 0.5:
            patch = qg(x - rng.uniform(0.5, 2), x + rng.uniform(0.5, 2), z, z + rng.uniform(1, 6))
            cv.fill(patch, scale(road, rng.uniform(0.75, 1.2)), ROAD, "asphalt")
        else:
            cv.fill(np.column_stack([x + 0.35 * CIRCLE.real, np.zeros(16), z + 0.35 * CIRCLE.imag]), (45, 45, 48), ROAD, "concrete")
    if tram_x is not None:
        if rng.random() < 0.35:  # separate gravel bed: void "rail track"
            cv.fill(qg(tram_x - 1.3, tram_x + 1.3, ZNEAR, z_end), jit(rng, (120, 105, 90), 10), RAIL, "gravel")
        for dx in (-0.72, 0.72):
            cv.fill(qg(tram_x + dx - 0.05, tram_x + dx + 0.05, ZNEAR, z_end), grey(rng, 150, 190, 2), ROAD, "paint")
    mark = jit(rng, st.marking, 5)
    for k in range(1, n_same):
        _dashes(cv, c0 - (k - 0.5) * lw, 0.12, rng.uniform(2, 8), z_end, 3.0, 6.0, mark)
    if n_onc:
        xm = c0 - (n_same - 0.5) * lw
        if rng.random() < 0.5:
            _dashes(cv, xm, 0.12, rng.uniform(2, 8), z_end, 4.0, 4.0, mark)
        else:
            cv.fill(qg(xm - 0.06, xm + 0.06, ZNEAR, z_end), mark, ROAD, "paint")
    for k in range(1, n_onc):
        _dashes(cv, c0 - (n_same + k - 0.5) * lw, 0.12, rng.uniform(2, 8), z_end, 3.0, 6.0, mark)
    for s in (-1, 1):
        if not park[s] and rng.random() < 0.6:
            x = edge[s] - s * 0.35
            cv.fill(qg(x - 0.06, x + 0.06, ZNEAR, z_end), mark, ROAD, "paint")
    kerb = grey(rng, 140, 190, 3)
    tree_pits: list[tuple[int, float, float]] = []
    for s in (-1, 1):
        pave = jit(rng, st.sidewalk, 6)
        cv.fill(qx(edge[s], ZNEAR, z_end, 0, 0.12), kerb, SIDEWALK, "concrete", cv.light((-s, 0, 0)))
        cv.fill(qg(edge[s], e_sw[s], ZNEAR, z_end, 0.12), pave, SIDEWALK, "paving")
        cv.fill(qg(edge[s], edge[s] + s * 0.2, ZNEAR, z_end, 0.12), kerb, SIDEWALK, "concrete")
        joint = scale(pave, 0.8)
        tl = rng.uniform(0.3, 1.0)
        z = 1.0
        while z < z_end and f * cv.hc * tl / z ** 2 > 3:  # paving joints while > 3 px apart
            cv.line(np.array([[edge[s], 0.12, z], [e_sw[s], 0.12, z]]), joint, SIDEWALK, "paving", 0.015)
            z += tl
        for x in np.arange(edge[s] + s * tl, e_sw[s], s * tl)[:8]:
            cv.line(np.array([[x, 0.12, 1.0], [x, 0.12, min(z_end, 80)]]), joint, SIDEWALK, "paving", 0.015)
        if sw[s] > 2.6 and rng.random() < st.veg:  # street trees in grass pits
            z = rng.uniform(4, 14)
            step = rng.uniform(10, 18)
            while z < min(z_end, 140):
                x = edge[s] + s * 1.1
                cv.fill(qg(x - 0.7, x + 0.7, z - 0.7, z + 0.7, 0.13), jit(rng, st.green, 15), TERRAIN, "grass")
                tree_pits.append((s, x, z))
                z += step
        if sb[s] > 0:  # setback: grass, dirt, parking or more paving, strip by strip
            z = ZNEAR
            while z < z_end:
                zb = min(z_end, z + rng.uniform(8, 40))
                kind = rng.choice(4, p=(0.5, 0.2, 0.1, 0.2))
                lab, mat, rgb = ((TERRAIN, "grass", jit(rng, st.green, 18) if rng.random() < 0.7 else jit(rng, (140, 130, 70), 15)),
                                 (GROUND, "gravel", jit(rng, (130, 110, 85), 12)),
                                 (PARKING, "asphalt", grey(rng, 80, 130, 3)),
                                 (SIDEWALK, "paving", jit(rng, st.sidewalk, 8)))[kind]
                cv.fill(qg(e_sw[s], e_back[s], z, zb, 0.12), rgb, lab, mat)
                z = zb
    if inter is not None:
        zi, wi = inter
        for s in (-1, 1):
            cv.fill(qg(edge[s], s * 400, zi, zi + wi), road, ROAD, "asphalt")
            for za, zb in ((zi - 3, zi), (zi + wi, zi + wi + 3)):
                cv.fill(qg(e_sw[s], s * 400, za, zb, 0.12), jit(rng, st.sidewalk, 6), SIDEWALK, "paving")
        x = edge[-1] + 0.5
        while x < edge[1] - 0.5:  # zebra crossing
            cv.fill(qg(x, x + 0.5, zi - 4.5, zi - 0.5), mark, ROAD, "paint")
            x += 1.0
        cv.fill(qg(edge[-1], edge[1], zi - 6.5, zi - 6.2), mark, ROAD, "paint")

    # --- buildings: back rows (seen through gaps), cross street, far row, front rows
    skip = (inter[0], inter[0] + inter[1]) if inter else None
    for s in (-1, 1):
        building_row(cv, rng, st, s, e_back[s], 1.0, min(z_end, 500), skip, False, 1.2)
    if inter is not None:
        zc = inter[0] + inter[1] + rng.uniform(2, 6)
        for s in (-1, 1):
            a, b = sorted((e_fac[s], s * 300))
            far_row(cv, rng, st, zc, a, b, 22)
    if has_far_row:
        x0, x1 = cv.x_range(z_end, 10)
        far_row(cv, rng, st, z_end, x0, x1, 30)
    for s in (-1, 1):
        if sb[s] > 0 and rng.random() < 0.35 * st.veg:  # a park instead of buildings: trees, no row
            for _ in range(int(rng.integers(3, 9))):
                tree(cv, rng, st, e_fac[s] + s * rng.uniform(0, 15), rng.uniform(8, 120), rng.uniform(1.0, 1.6))
            continue
        for za, zb, h in building_row(cv, rng, st, s, e_fac[s], 1.0, min(z_end, 500), skip, True, 1.0):
            if sunny and s * cv.sun[0] > 0:  # this side faces away from the sun and shades the street
                kx, kz = -cv.sun[0] / cv.sun[1] * h, -cv.sun[2] / cv.sun[1] * h
                cv.cast(np.array([[e_fac[s], 0, za], [e_fac[s], 0, zb], [e_fac[s] + kx, 0, zb + kz], [e_fac[s] + kx, 0, za + kz]]))

    # --- setback trees, then walls / fences / hedges along the sidewalk's outer edge
    for s in (-1, 1):
        if sb[s] > 1.5:
            for _ in range(int(rng.poisson(3 * st.veg))):
                tree(cv, rng, st, e_sw[s] + s * rng.uniform(0.8, sb[s] - 0.5), rng.uniform(6, 90), rng.uniform(0.7, 1.2))
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
            (wall, fence, hedge, lambda *a: None)[kind](cv, rng, st, s, e_sw[s], z, zb)
            z = zb + (rng.uniform(0, 10) if rng.random() < 0.4 else 0)

    street_objects(rng, st, add, edge=edge, sw=sw, e_sw=e_sw, z_end=z_end, inter=inter, same=same, onc=onc,
                   park=park, tram_x=tram_x, tree_pits=tree_pits, skip=skip)

    for _, _, fn in sorted(objs, key=lambda o: (-o[0], o[1])):
        fn()

    # --- ego vehicle: the void hood at the bottom
    top, bulge = st.hood * cv.H, cv.H * 0.04
    xs = np.linspace(0, cv.W, 33)
    ys = top + bulge * ((xs - cv.W / 2) / (cv.W / 2)) ** 2
    pid = cv.part(st.hood_rgb, EGO, "ego")
    cv.draw.polygon(list(zip(xs.tolist(), ys.tolist())) + [(cv.W, cv.H), (0, cv.H)], fill=pid)
    return top, bulge


# ----------------------------------------------------------------------------- pixels
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
    if split not in SPLIT_CODE:
        raise CitysegError(f"split {split!r} is not one of {sorted(SPLIT_CODE)}")
    W, H = size
    city, key = _frame_key(split, index)
    st = city_style(seed, city)
    rng = np.random.default_rng([seed, SPLIT_CODE[split], index])
    if rng.random() < st.sunny:
        el, a = rng.uniform(0.4, 1.0), rng.uniform(0, 2 * math.pi)
        sun, amb, dif = (math.cos(el) * math.cos(a), math.sin(el), math.cos(el) * math.sin(a)), 0.45, 0.9
    else:
        sun, amb, dif = (0.0, 1.0, 0.0), 1.0, 0.15
    cv = Canvas(W, H, f=W * rng.uniform(0.95, 1.15), hy=H * rng.uniform(0.36, 0.47), vx=W * rng.uniform(0.44, 0.56),
                 hc=rng.uniform(1.15, 1.4), sun=sun, amb=amb, dif=dif, haze=(200, 210, 220), visibility=rng.uniform(250, 900))
    hood = _scene(cv, rng, st)
    tone = (rng.uniform(0.78, 1.15), rng.uniform(0.85, 1.12), np.array(rng.uniform(0.93, 1.07, 3), dtype=np.float32))
    image = shade(cv, rng, tone, hood)
    P = np.asarray(cv.parts)
    inst = np.take(np.asarray(cv.values, dtype=np.int32), P)
    labels = np.where(inst >= 1000, inst // 1000, inst).astype(np.uint8)
    return DemoFrame(city, key, image, labels, inst.astype(np.uint16))
