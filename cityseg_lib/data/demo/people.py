"""People of the demo streets: pedestrians, and bicycles or motorcycles with their riders."""

from __future__ import annotations

import math

import numpy as np

from cityseg_lib.data.demo.canvas import BIKE, MOTO, PERSON, RIDER, Canvas, bill, ellipse, jit, local, qg


# ----------------------------------------------------------------------------- people
_CLOTHES = ((30, 30, 35), (60, 60, 65), (45, 60, 100), (120, 120, 125), (200, 195, 185), (150, 40, 40),
            (40, 80, 60), (170, 150, 110), (230, 230, 230), (90, 60, 40), (60, 50, 90), (210, 120, 40))
_SKIN = ((230, 190, 160), (200, 150, 115), (150, 100, 70), (100, 65, 45))
_HAIR = ((30, 25, 20), (90, 60, 30), (190, 160, 100), (140, 140, 140), (60, 40, 25))


def _outfit(rng) -> tuple:
    pick = lambda pal: jit(rng, pal[rng.integers(len(pal))], 10)  # noqa: E731
    return pick(_CLOTHES), pick(_CLOTHES), pick(_SKIN), pick(_HAIR)


def person(cv: Canvas, rng, x: float, z: float, side_view: bool) -> None:
    """A pedestrian billboard: legs, torso, arms, head; walking stride when seen from the side."""
    h = rng.uniform(1.55, 1.95) if rng.random() < 0.9 else rng.uniform(1.0, 1.3)
    v = cv.instance(PERSON)
    pants, top, skin, hair = _outfit(rng)
    lt = cv.light((0, 0, -1))
    hip, sho, half = 0.5 * h, 0.8 * h, (0.07 if side_view else 0.13) * h
    stride = rng.uniform(0.1, 0.35) * h * (1 if side_view else 0.15) * (1 if rng.random() < 0.5 else -1)
    for foot in (-stride / 2, stride / 2):
        c = 0.0 if side_view else math.copysign(0.05 * h, foot) if foot else 0.0
        cv.fill(bill(x, z, [(c - 0.045 * h, hip), (c + 0.045 * h, hip), (foot + c + 0.035 * h, 0), (foot + c - 0.035 * h, 0)]),
                pants, v, "cloth", lt)
        cv.fill(bill(x, z - 0.01, [(foot + c - 0.05 * h, 0), (foot + c + 0.05 * h, 0), (foot + c + 0.04 * h, 0.035 * h),
                                    (foot + c - 0.04 * h, 0.035 * h)]), (30, 28, 28), v, "cloth", lt)
    coat = rng.random() < 0.3
    hem = hip - (0.15 * h if coat else 0.02 * h)
    cv.fill(bill(x, z - 0.02, [(-half * 0.85, hem), (half * 0.85, hem),
                                (half, sho), (-half, sho)]), top, v, "cloth", lt)
    for sgn in (-1, 1):
        swing = (stride * -sgn * 0.6) if side_view else sgn * 0.03 * h
        cv.fill(bill(x, z - 0.03 if sgn > 0 else z + 0.01,
                      [(sgn * half - 0.03 * h, sho), (sgn * half + 0.03 * h, sho), (sgn * half + swing + 0.025 * h, 0.47 * h),
                       (sgn * half + swing - 0.025 * h, 0.47 * h)]), top, v, "cloth", lt)
    cv.fill(bill(x, z - 0.02, [(-0.035 * h, sho - 0.01), (0.035 * h, sho - 0.01), (0.035 * h, 0.87 * h), (-0.035 * h, 0.87 * h)]),
            skin, v, "cloth", lt)
    cv.fill(bill(x, z - 0.03, ellipse(0, 0.925 * h, 0.06 * h, 0.07 * h)), skin, v, "cloth", lt)
    cv.fill(bill(x, z - 0.04, ellipse(0, 0.955 * h, 0.062 * h, 0.045 * h)), hair, v, "cloth", lt)
    if rng.random() < 0.3:  # bag
        sgn = 1 if rng.random() < 0.5 else -1
        cv.fill(bill(x, z - 0.04, [(sgn * half, 0.45 * h), (sgn * (half + 0.12 * h), 0.45 * h),
                                    (sgn * (half + 0.12 * h), 0.6 * h), (sgn * half, 0.6 * h)]), _outfit(rng)[0], v, "cloth", lt)
    if cv.dif > 0.3:
        cv.cast(qg(x - 0.3, x + 0.3, z - 0.2, z + 0.4))


# ----------------------------------------------------------------------------- two-wheelers
def _wheel(cv: Canvas, x: float, z: float, heading: float, u: float, r: float, value: int, tyre, filled: bool) -> None:
    pts = local(x, z, heading, ellipse(u, r, r, r))
    if filled:
        cv.fill(pts, tyre, value, "flat")
        cv.fill(local(x, z, heading, ellipse(u, r, r * 0.5, r * 0.5)), (120, 120, 125), value, "paint")
    else:
        cv.line(np.vstack([pts, pts[:1]]), tyre, value, "flat", 0.045)
        for a, b in (((u - r, r), (u + r, r)), ((u, 0.0), (u, 2 * r))):  # two spokes
            cv.line(local(x, z, heading, [a, b]), (110, 110, 110), value, "flat", 0.01)


def two_wheeler(cv: Canvas, rng, x: float, z: float, heading: float, motor: bool, rider: bool) -> None:
    """A bicycle or motorcycle in its vertical plane (thin from behind), optionally ridden."""
    back_view = abs(math.sin(heading)) < 0.5
    lab = MOTO if motor else BIKE
    v = cv.instance(lab)
    rgb = jit(rng, ((25, 25, 28), (160, 30, 30), (40, 60, 140), (190, 190, 195), (30, 90, 50))[rng.integers(5)], 10)
    tyre = (22, 22, 24)
    r = 0.31 if motor else 0.34
    wb = 0.7 if motor else 0.53
    loc = lambda uv: local(x, z, heading, uv)  # noqa: E731
    _wheel(cv, x, z, heading, -wb, r, v, tyre, motor)
    _wheel(cv, x, z, heading, wb, r, v, tyre, motor)
    if motor:
        cv.fill(loc([(-0.75, 0.55), (-0.45, 0.85), (0.05, 0.92), (0.35, 0.98), (0.55, 0.85), (0.4, 0.45), (0.05, 0.3), (-0.4, 0.4)]),
                rgb, v, "paint", cv.light((0, 0, -1)))
        cv.fill(loc([(-0.7, 0.85), (-0.1, 0.92), (-0.1, 1.0), (-0.65, 0.95)]), (30, 30, 30), v, "cloth")
        seat, handle = (-0.35, 0.95), (0.45, 1.1)
        if back_view:
            cv.fill(bill(x, z - wb, [(-0.08, 0.0), (0.08, 0.0), (0.08, 0.6), (-0.08, 0.6)]), tyre, v, "flat")
            cv.fill(bill(x, z - 0.4, [(-0.3, 0.45), (0.3, 0.45), (0.25, 1.0), (-0.25, 1.0)]), rgb, v, "paint")
            cv.fill(bill(x, z - 0.6, [(-0.08, 0.75), (0.08, 0.75), (0.08, 0.82), (-0.08, 0.82)]), (220, 40, 40), v, "flat")
    else:
        seat, handle = (-0.22, 0.92), (0.45, 1.05)
        frame = [(-wb, r), (-0.02, 0.3), seat, (-wb, r)]
        cv.line(loc(frame), rgb, v, "paint", 0.04)
        cv.line(loc([(-0.02, 0.3), (0.4, 0.9), (0.2, 0.9), seat]), rgb, v, "paint", 0.04)
        cv.line(loc([(wb, r), (0.42, 0.95), handle]), rgb, v, "paint", 0.035)
        cv.line(loc([(seat[0] - 0.1, seat[1] + 0.03), (seat[0] + 0.1, seat[1] + 0.03)]), (30, 30, 30), v, "cloth", 0.06)
    if back_view:  # handlebar across the view
        hz = z + handle[0] * math.cos(heading)
        cv.line(bill(x, hz, [(-0.3, handle[1]), (0.3, handle[1])]), (40, 40, 40), v, "paint", 0.035)
    if rider:
        _rider(cv, rng, x, z, heading, seat, handle, back_view, motor)


def _rider(cv: Canvas, rng, x: float, z: float, heading: float, seat, handle, back_view: bool, motor: bool) -> None:
    v = cv.instance(RIDER)
    pants, top, skin, hair = _outfit(rng)
    helmets = ((30, 30, 30), (230, 230, 230), (200, 40, 40), (40, 60, 150))
    head = jit(rng, helmets[rng.integers(4)], 8) if motor or rng.random() < 0.4 else hair
    lt = cv.light((0, 0, -1))
    sy = seat[1] + 0.05
    if back_view:  # rider seen from behind or the front: a billboard over the bike
        zz = z + seat[0] * math.cos(heading) - 0.05
        for sgn in (-1, 1):
            cv.fill(bill(x, zz, [(sgn * 0.05, sy), (sgn * 0.17, sy), (sgn * 0.16, 0.3), (sgn * 0.08, 0.3)]), pants, v, "cloth", lt)
            cv.fill(bill(x, zz - 0.02, [(sgn * 0.17, sy + 0.5), (sgn * 0.23, sy + 0.45), (sgn * 0.3, handle[1]),
                                         (sgn * 0.25, handle[1])]), top, v, "cloth", lt)
        cv.fill(bill(x, zz - 0.01, [(-0.17, sy), (0.17, sy), (0.21, sy + 0.55), (-0.21, sy + 0.55)]), top, v, "cloth", lt)
        cv.fill(bill(x, zz - 0.02, ellipse(0, sy + 0.7, 0.11, 0.13)), skin, v, "cloth", lt)
        cv.fill(bill(x, zz - 0.03, ellipse(0, sy + 0.75, 0.115, 0.09)), head, v, "cloth", lt)
        return
    loc = lambda uv: local(x, z, heading, uv)  # noqa: E731
    hip = (seat[0], sy)
    sho = (seat[0] + 0.3, sy + 0.5)
    knee = (seat[0] + 0.35, sy - 0.2)
    cv.line(loc([hip, knee, (0.0, 0.3 if not motor else 0.45)]), pants, v, "cloth", 0.14)
    cv.fill(loc([(hip[0] - 0.12, hip[1]), (hip[0] + 0.12, hip[1] - 0.02), (sho[0] + 0.1, sho[1]), (sho[0] - 0.12, sho[1] + 0.03)]),
            top, v, "cloth", lt)
    cv.line(loc([sho, (handle[0] - 0.05, handle[1])]), top, v, "cloth", 0.09)
    cv.fill(loc(ellipse(sho[0] + 0.08, sho[1] + 0.18, 0.11, 0.13)), skin, v, "cloth", lt)
    cv.fill(loc(ellipse(sho[0] + 0.06, sho[1] + 0.23, 0.12, 0.09)), head, v, "cloth", lt)
