"""Street furniture of the demo streets: lamp posts, traffic signs and lights, bins, benches
and other static or dynamic void things."""

from __future__ import annotations

import numpy as np

from cityseg_lib.data.demo.canvas import DYNAMIC, LIGHT, POLE, SIGN, STATIC, Canvas, bill, ellipse, grey, jit, qz, scale


# ----------------------------------------------------------------------------- street furniture
def _pole(cv: Canvas, x: float, z: float, h: float, w: float, rgb, y0: float = 0.0) -> None:
    cv.fill(qz(z, x - w / 2, x + w / 2, y0, h), rgb, POLE, "paint", cv.light((0.0, 0.0, -1.0)))


def lamp(cv: Canvas, rng, s: int, x: float, z: float) -> None:
    h, w = rng.uniform(5, 9), rng.uniform(0.14, 0.26)
    rgb = grey(rng, 80, 170, 4) if rng.random() < 0.7 else jit(rng, (40, 70, 55), 6)
    _pole(cv, x, z, h, w, rgb)
    arm = rng.uniform(0.8, 2.0)
    cv.line(np.array([[x, h - 0.1, z], [x - s * arm, h + 0.15, z]]), rgb, POLE, "paint", w * 0.6)
    cv.fill(qz(z - 0.05, x - s * arm - 0.35, x - s * arm + 0.35, h, h + 0.22), grey(rng, 60, 200, 3), POLE, "paint")


def _sign_plate(cv: Canvas, rng, x: float, z: float, yc: float, front: bool) -> None:
    r = rng.uniform(0.3, 0.45)
    v = SIGN
    if not front:  # the back of a sign is grey metal, still labelled traffic sign
        cv.fill(bill(x, z, ellipse(0, yc, r, r) if rng.random() < 0.6 else [(-r, yc - r), (r, yc - r), (r, yc + r), (-r, yc + r)]),
                grey(rng, 110, 170, 3), v, "paint", cv.light((0, 0, -1)))
        return
    kind = rng.integers(6)
    red, white, blue, yellow = (200, 30, 35), (235, 235, 235), (30, 80, 170), (240, 200, 30)
    if kind == 0:  # prohibitory: red ring, white disc
        cv.fill(bill(x, z, ellipse(0, yc, r, r)), red, v, "paint")
        cv.fill(bill(x, z - 0.01, ellipse(0, yc, r * 0.75, r * 0.75)), white, v, "paint")
    elif kind == 1:  # mandatory: blue disc, white arrow
        cv.fill(bill(x, z, ellipse(0, yc, r, r)), blue, v, "paint")
        cv.fill(bill(x, z - 0.01, [(-0.1 * r, yc - 0.6 * r), (0.1 * r, yc - 0.6 * r), (0.1 * r, yc + 0.1 * r),
                                    (0.35 * r, yc + 0.1 * r), (0, yc + 0.6 * r), (-0.35 * r, yc + 0.1 * r), (-0.1 * r, yc + 0.1 * r)]),
                white, v, "paint")
    elif kind == 2:  # warning triangle
        cv.fill(bill(x, z, [(-r, yc - 0.8 * r), (r, yc - 0.8 * r), (0, yc + r)]), red, v, "paint")
        cv.fill(bill(x, z - 0.01, [(-0.65 * r, yc - 0.6 * r), (0.65 * r, yc - 0.6 * r), (0, yc + 0.55 * r)]), white, v, "paint")
    elif kind == 3:  # priority diamond
        cv.fill(bill(x, z, [(0, yc - r), (r, yc), (0, yc + r), (-r, yc)]), white, v, "paint")
        cv.fill(bill(x, z - 0.01, [(0, yc - 0.65 * r), (0.65 * r, yc), (0, yc + 0.65 * r), (-0.65 * r, yc)]), yellow, v, "paint")
    elif kind == 4:  # blue information rectangle (parking, crossing)
        cv.fill(bill(x, z, [(-r, yc - r), (r, yc - r), (r, yc + r), (-r, yc + r)]), blue, v, "paint")
        cv.fill(bill(x, z - 0.01, [(-0.3 * r, yc - 0.5 * r), (0.3 * r, yc - 0.5 * r), (0.3 * r, yc + 0.5 * r), (-0.3 * r, yc + 0.5 * r)]),
                white, v, "paint")
    else:  # direction sign: wide yellow or white board
        cv.fill(bill(x, z, [(-2.2 * r, yc - 0.8 * r), (2.2 * r, yc - 0.8 * r), (2.2 * r, yc + 0.8 * r), (-2.2 * r, yc + 0.8 * r)]),
                (yellow, white)[rng.integers(2)], v, "paint")


def sign_post(cv: Canvas, rng, x: float, z: float, front: bool) -> None:
    h = rng.uniform(2.4, 3.4)
    _pole(cv, x, z + 0.02, h, rng.uniform(0.07, 0.1), grey(rng, 120, 180, 3))
    _sign_plate(cv, rng, x, z, h - 0.1, front)
    if rng.random() < 0.35:
        _sign_plate(cv, rng, x, z, h - 1.0, front)


def _traffic_light(cv: Canvas, rng, x: float, z: float, y0: float, front: bool) -> None:
    """Housing with three lamps (one lit); seen from the back it is a dark box."""
    w, h = 0.32, 0.9
    housing = grey(rng, 20, 45, 2) if rng.random() < 0.8 else jit(rng, (200, 170, 40), 10)
    lt = cv.light((0, 0, -1))
    cv.fill(bill(x, z, [(-w / 2, y0), (w / 2, y0), (w / 2, y0 + h), (-w / 2, y0 + h)]), housing, LIGHT, "paint", lt)
    if not front:
        return
    if rng.random() < 0.5:  # yellow-striped backplate
        cv.fill(bill(x, z + 0.01, [(-w, y0 - 0.05), (w, y0 - 0.05), (w, y0 + h + 0.05), (-w, y0 + h + 0.05)]),
                (40, 40, 40), LIGHT, "paint", lt)
        cv.fill(bill(x, z, [(-w / 2, y0), (w / 2, y0), (w / 2, y0 + h), (-w / 2, y0 + h)]), housing, LIGHT, "paint", lt)
    lit = rng.integers(3)
    for k, (on, off) in enumerate((((60, 230, 130), (20, 50, 30)), ((250, 180, 40), (60, 45, 15)), ((250, 50, 40), (60, 18, 15)))):
        cv.fill(bill(x, z - 0.01, ellipse(0, y0 + 0.15 + 0.3 * k, 0.1, 0.1)), on if k == lit else off, LIGHT, "flat")


def light_pole(cv: Canvas, rng, s: int, x: float, z: float, front: bool, arm_to: float | None) -> None:
    h = rng.uniform(3.0, 4.2) if arm_to is None else rng.uniform(5.5, 6.5)
    rgb = grey(rng, 90, 160, 3)
    _pole(cv, x, z + 0.03, h, 0.16, rgb)
    _traffic_light(cv, rng, x, z, h - 1.0 if arm_to is None else 2.2, front)
    if arm_to is not None:  # mast arm over the road with a second head
        cv.line(np.array([[x, h - 0.2, z + 0.03], [arm_to, h - 0.2, z + 0.03]]), rgb, POLE, "paint", 0.12)
        _traffic_light(cv, rng, arm_to, z, h - 1.2, front)


def static_thing(cv: Canvas, rng, x: float, z: float) -> None:
    """Void street furniture: bins, bollards, benches, advertising columns (label static)."""
    kind = rng.integers(4)
    lt = cv.light((0, 0, -1))
    if kind == 0:
        rgb = (grey(rng, 60, 120), jit(rng, (40, 90, 60), 8), jit(rng, (220, 120, 30), 10))[rng.integers(3)]
        cv.fill(qz(z, x - 0.3, x + 0.3, 0, 1.0), rgb, STATIC, "paint", lt)
        cv.fill(qz(z - 0.01, x - 0.33, x + 0.33, 0.9, 1.05), scale(rgb, 0.8), STATIC, "paint", lt)
    elif kind == 1:
        for dx in (-0.8, 0.0, 0.8)[: rng.integers(1, 4)]:
            cv.fill(qz(z, x + dx - 0.07, x + dx + 0.07, 0, 0.9), grey(rng, 90, 200), STATIC, "paint", lt)
    elif kind == 2:
        wood = jit(rng, (130, 95, 60), 10)
        cv.fill(qz(z, x - 0.9, x + 0.9, 0.42, 0.5), wood, STATIC, "paint", lt)
        cv.fill(qz(z + 0.3, x - 0.9, x + 0.9, 0.55, 0.9), wood, STATIC, "paint", lt)
        for dx in (-0.8, 0.75):
            cv.fill(qz(z - 0.01, x + dx - 0.05, x + dx + 0.05, 0, 0.45), (40, 40, 40), STATIC, "paint", lt)
    else:
        cv.fill(qz(z, x - 0.6, x + 0.6, 0, 2.9), grey(rng, 150, 220), STATIC, "paint", lt)
        for k in range(3):
            cv.fill(qz(z - 0.01, x - 0.55, x + 0.55, 0.4 + 0.8 * k, 1.1 + 0.8 * k), jit(rng, rng.uniform(30, 230, 3), 5),
                    STATIC, "paint", lt)
        cv.fill(qz(z - 0.02, x - 0.7, x + 0.7, 2.9, 3.2), (50, 60, 55), STATIC, "paint", lt)


def dynamic_thing(cv: Canvas, rng, x: float, z: float) -> None:
    """Movable void things (a pushcart or stroller; label dynamic)."""
    rgb = jit(rng, rng.uniform(30, 220, 3), 5)
    cv.fill(qz(z, x - 0.35, x + 0.35, 0.3, 0.95), rgb, DYNAMIC, "cloth")
    for dx in (-0.25, 0.25):
        cv.fill(bill(x + dx, z - 0.01, ellipse(0, 0.13, 0.12, 0.12)), (25, 25, 25), DYNAMIC, "flat")
