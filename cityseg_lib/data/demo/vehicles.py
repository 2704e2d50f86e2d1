"""Vehicles of the demo streets: cars, trucks, buses and trams, extruded from side profiles."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from cityseg_lib.data.demo.canvas import BUS, CAR, CIRCLE, TRAIN, TRUCK, Canvas, bill, grey, jit, qg, qz, scale


# ----------------------------------------------------------------------------- vehicles
def _prism(cv: Canvas, x0: float, x1: float, z0: float, L: float, away: bool, prof: np.ndarray, kinds, cols: dict,
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


def _small(cv: Canvas, b: _Body) -> bool:
    """True when details (windows, wheels, lamps) would be only a pixel or two: skip them."""
    return cv.px(0.4, b.z0) < 2.0


def _side_poly(cv: Canvas, b: _Body, pts, rgb, value: int, mat: str) -> None:
    sd = b.side()
    if sd is None or _small(cv, b):
        return
    P = np.array([[sd[0], y, b.z(s)] for s, y in pts])
    cv.fill(P, rgb, value, mat, cv.light((sd[1], 0.0, 0.0)))


def _side_wheels(cv: Canvas, b: _Body, ss, r: float, value: int) -> None:
    sd = b.side()
    if sd is None or _small(cv, b):
        return
    for s in ss:
        for rr, rgb in ((r, (22, 22, 24)), (r * 0.55, (110, 110, 115))):
            P = np.column_stack([np.full(16, sd[0]), r + rr * CIRCLE.imag, b.z(s) + rr * CIRCLE.real])
            cv.fill(P, rgb, value, "paint")


def _end_quad(cv: Canvas, b: _Body, u0: float, u1: float, y0: float, y1: float, rgb, value: int, mat: str = "paint") -> None:
    """A detail on the end face toward the camera, u measured from the body's left edge."""
    if _small(cv, b):
        return
    cv.fill(qz(b.z0 - 0.015, b.x0 + u0, b.x0 + u1, y0, y1), rgb, value, mat, cv.light((0, 0, -1)))


def _under(cv: Canvas, b: _Body, value: int, h: float) -> None:
    """Tyres seen under the bumper and the dark shadow under the body."""
    for u0, u1 in ((0.05, 0.32), (b.x1 - b.x0 - 0.32, b.x1 - b.x0 - 0.05)):
        cv.fill(qz(b.z0 + 0.8, b.x0 + u0, b.x0 + u1, 0, h), (22, 22, 24), value, "flat")
    dx = -cv.sun[0] / cv.sun[1] * 1.2 if cv.dif > 0.3 else 0.0
    cv.cast(qg(b.x0 - 0.05 + min(dx, 0), b.x1 + 0.05 + max(dx, 0), b.z0 + 0.1, b.z0 + b.L))


_CAR_LOWER = np.array([(0.03, .12), (.97, .12), (1, .22), (1, .46), (.96, .6), (.04, .62), (0, .55), (0, .22)])
_CAR_LOWER_KINDS = ("dark", "dark", "body", "body", "body", "body", "body", "dark")
_CAR_CABIN = np.array([(.06, .6), (.8, .6), (.62, 1.0), (.18, 1.0)])
_CAR_CABIN_KINDS = ("body", "glass", "body", "glass")
_CAR_WINDOW = ((.1, .64), (.76, .64), (.6, .95), (.2, .95))
_CAR_COLORS = ((25, 25, 28), (50, 52, 56), (90, 92, 96), (175, 178, 182), (225, 225, 222), (150, 25, 30),
               (30, 50, 110), (35, 70, 45), (120, 120, 110), (200, 160, 60))


def car(cv: Canvas, rng, xc: float, z0: float, away: bool) -> None:
    L, Wd, H = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.95), rng.uniform(1.42, 1.75)
    v = cv.instance(CAR)
    body = jit(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))], 8)
    cols = {"body": body, "glass": grey(rng, 25, 70, 5), "dark": (28, 28, 30)}
    b = _Body(xc - Wd / 2, xc + Wd / 2, z0, L, away)
    _under(cv, b, v, 0.45)
    _prism(cv, b.x0, b.x1, z0, L, away, _CAR_LOWER * (L, H), _CAR_LOWER_KINDS, cols, v)
    _prism(cv, b.x0 + 0.1, b.x1 - 0.1, z0, L, away, _CAR_CABIN * (L, H), _CAR_CABIN_KINDS, cols, v)
    _side_poly(cv, b._replace(x0=b.x0 + 0.1, x1=b.x1 - 0.1), [(s * L, y * H) for s, y in _CAR_WINDOW], cols["glass"], v, "glass")
    _side_poly(cv, b._replace(x0=b.x0 + 0.08, x1=b.x1 - 0.08), [(0.44 * L, 0.63 * H), (0.47 * L, 0.63 * H), (0.47 * L, 0.96 * H),
                                                                 (0.44 * L, 0.96 * H)], body, v, "paint")
    _side_wheels(cv, b, (0.18 * L, 0.8 * L), 0.32, v)
    lamp = (jit(rng, (200, 30, 30), 10) if away else grey(rng, 200, 245, 3))
    for u0 in (0.06, Wd - 0.34):
        _end_quad(cv, b, u0, u0 + 0.28, 0.4 * H, 0.52 * H, lamp, v, "flat")
    if not away:
        _end_quad(cv, b, 0.45, Wd - 0.45, 0.3 * H, 0.42 * H, (30, 30, 30), v)
    _end_quad(cv, b, Wd / 2 - 0.26, Wd / 2 + 0.26, 0.2 * H, 0.28 * H, (230, 230, 225), v, "flat")


_CARGO = ((230, 230, 228), (190, 190, 190), (60, 90, 150), (170, 40, 35), (220, 200, 60), (90, 90, 90))


def truck(cv: Canvas, rng, xc: float, z0: float, away: bool) -> None:
    L, Wd, Hb, Hc = rng.uniform(6.5, 10), 2.45, rng.uniform(3.0, 3.8), rng.uniform(2.6, 3.0)
    Lc = L - 2.3
    v = cv.instance(TRUCK)
    cargo = jit(rng, _CARGO[rng.integers(len(_CARGO))], 8)
    cab = jit(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))], 8) if rng.random() < 0.5 else cargo
    b = _Body(xc - Wd / 2, xc + Wd / 2, z0, L, away)
    _under(cv, b, v, 0.9)
    parts = [
        (np.array([(Lc + 0.3, .55), (L, .55), (L, 1.5), (L - .35, Hc - .1), (L - .6, Hc), (Lc + .3, Hc)]),
         ("dark", "body", "glass", "body", "body", "body"), cab),
        (np.array([(0.2, .45), (L - .2, .45), (L - .2, .95), (0.2, .95)]), ("dark",) * 4, (35, 35, 38)),
        (np.array([(0, .95), (Lc, .95), (Lc, Hb), (0, Hb)]), ("body",) * 4, cargo),
    ]
    for prof, kinds, rgb in parts if away else parts[::-1]:
        _prism(cv, b.x0, b.x1, z0, L, away, prof, kinds, {"body": rgb, "glass": grey(rng, 30, 60, 4), "dark": (35, 35, 38)}, v)
    _side_poly(cv, b, [(L - 1.5, 1.6), (L - 0.5, 1.6), (L - 0.65, Hc - 0.3), (L - 1.5, Hc - 0.3)], grey(rng, 30, 60, 4), v, "glass")
    if rng.random() < 0.5:  # company lettering band
        _side_poly(cv, b, [(0.5, Hb * 0.55), (Lc - 0.5, Hb * 0.55), (Lc - 0.5, Hb * 0.75), (0.5, Hb * 0.75)],
                   jit(rng, rng.uniform(20, 230, 3), 5), v, "paint")
    _side_wheels(cv, b, (1.0, 2.1, L - 1.3), 0.5, v)
    if away:
        _end_quad(cv, b, Wd / 2 - 0.02, Wd / 2 + 0.02, 1.0, Hb - 0.1, scale(cargo, 0.7), v)
        for u0 in (0.08, Wd - 0.33):
            _end_quad(cv, b, u0, u0 + 0.25, 0.6, 0.75, (200, 30, 30), v, "flat")
    else:
        for u0 in (0.1, Wd - 0.45):
            _end_quad(cv, b, u0, u0 + 0.35, 0.7, 0.9, (230, 230, 220), v, "flat")


def bus(cv: Canvas, rng, xc: float, z0: float, away: bool, rgb, tram: bool = False) -> None:
    """A city bus, or (``tram=True``) a long articulated tram with a pantograph (label train)."""
    if tram:
        L, Wd, Hb, y0 = rng.uniform(22, 32), 2.4, rng.uniform(3.2, 3.5), 0.35
        v = cv.instance(TRAIN)
    else:
        L, Wd, Hb, y0 = (rng.uniform(10.5, 13.5) if rng.random() < 0.8 else 18.0), 2.55, rng.uniform(2.9, 3.2), 0.35
        v = cv.instance(BUS)
    glass = grey(rng, 25, 60, 4)
    b = _Body(xc - Wd / 2, xc + Wd / 2, z0, L, away)
    _under(cv, b, v, 0.6)
    prof = np.array([(0.05, y0), (L - 0.05, y0), (L, y0 + 0.15), (L, Hb - 0.15), (L - 0.2, Hb), (0.2, Hb), (0, Hb - 0.15), (0, y0 + 0.15)])
    _prism(cv, b.x0, b.x1, z0, L, away, prof, ("dark", "dark", "body", "body", "body", "body", "body", "dark"),
           {"body": rgb, "glass": glass, "dark": (35, 35, 38)}, v)
    if tram or rng.random() < 0.5:  # contrasting lower band
        _side_poly(cv, b, [(0.1, y0 + 0.05), (L - 0.1, y0 + 0.05), (L - 0.1, 1.0), (0.1, 1.0)], grey(rng, 170, 235, 3), v, "paint")
    s = 0.4
    while s + 1.2 < L - 2.0:
        _side_poly(cv, b, [(s, 1.2), (s + 1.15, 1.2), (s + 1.15, Hb - 0.4), (s, Hb - 0.4)], jit(rng, glass, 6), v, "glass")
        s += 1.3
    _side_poly(cv, b, [(L - 1.9, 0.5), (L - 0.9, 0.5), (L - 0.9, Hb - 0.5), (L - 1.9, Hb - 0.5)], glass, v, "glass")
    if tram:
        for k in range(1, 3):  # articulation joints
            sj = L * k / 3
            _side_poly(cv, b, [(sj - 0.15, y0), (sj + 0.15, y0), (sj + 0.15, Hb), (sj - 0.15, Hb)], (40, 40, 40), v, "flat")
        zp = b.z(L / 2)
        cv.line(bill(xc, zp, [(-0.6, Hb), (0, Hb + 1.0), (0.6, Hb)]), (50, 50, 50), v, "paint", 0.05)
        cv.line(bill(xc, zp, [(-0.5, Hb + 1.0), (0.5, Hb + 1.0)]), (50, 50, 50), v, "paint", 0.05)
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
        _end_quad(cv, b, 0.5, Wd - 0.5, 0.6, 1.2, scale(rgb, 0.6), v)
    lamp = (230, 230, 220) if front else (200, 30, 30)
    for u0 in (0.12, Wd - 0.42):
        _end_quad(cv, b, u0, u0 + 0.3, 0.55, 0.75, lamp, v, "flat")
