"""Buildings and "stuff" of the demo streets: facades, building rows, skylines, trees,
hedges, walls and fences."""

from __future__ import annotations

import numpy as np

from cityseg_lib.data.demo.canvas import BUILDING, CIRCLE, FENCE, VEG, WALL, ZNEAR, Canvas, bill, ellipse, grey, jit, qg, qx, qz, scale
from cityseg_lib.data.demo.style import Style


# ----------------------------------------------------------------------------- buildings & stuff
_DOORS = ((70, 50, 35), (45, 45, 48), (120, 40, 30))


def _facade(cv: Canvas, rng, st: Style, plane: str, c: float, a0: float, a1: float, h: float, rgb,
            shop: bool = True) -> None:
    """A building front ``h`` metres tall, with windows, from ``a0`` to ``a1`` metres along its row.

    ``plane`` "x": along the street in the plane X = c (a0, a1 are Z); "z": facing the camera in
    the plane Z = c (a0, a1 are X). Windows are skipped off-screen and below ~1.5 pixels, which
    keeps small frames fast.
    """
    if plane == "x":
        s = 1.0 if c > 0 else -1.0
        mk = lambda a, b, y0, y1, d: qx(c - s * d, a, b, y0, y1)  # noqa: E731
        normal = (-s, 0.0, 0.0)
        x_on = cv.vx + cv.f * c / np.maximum(np.arange(a0, a1 + 3.0, 3.0), ZNEAR)
    else:
        mk = lambda a, b, y0, y1, d: qz(c - d, a, b, y0, y1)  # noqa: E731
        normal = (0.0, 0.0, -1.0)
        xr = cv.x_range(c, 3.0)
    lt = cv.light(normal)
    mat = "plaster" if rng.random() < 0.75 else "concrete"
    cv.fill(mk(a0, a1, 0, h, 0), rgb, BUILDING, mat, lt)
    cv.fill(mk(a0, a1, 0, rng.uniform(0.3, 0.9), 0.005), scale(rgb, rng.uniform(0.55, 0.8)), BUILDING, "concrete", lt)
    cv.fill(mk(a0, a1, h - rng.uniform(0.3, 0.7), h, 0.01), scale(rgb, rng.uniform(0.7, 1.2)), BUILDING, mat, lt)
    gf, fh = rng.uniform(3.2, 4.4), rng.uniform(2.9, 3.5)
    sp = rng.uniform(2.2, 3.8)
    ww, wh, sill = rng.uniform(0.8, min(1.6, sp - 0.5)), rng.uniform(1.1, 1.8), rng.uniform(0.7, 1.0)
    dark = rng.random() < 0.6
    glass = grey(rng, 30, 75, 6) if dark else jit(rng, (130, 150, 170), 15)
    frame = grey(rng, 200, 240, 3) if rng.random() < 0.6 else None
    if rng.random() < 0.4:  # string courses between floors
        band = scale(rgb, rng.uniform(0.8, 1.15))
        for k in range(int((h - gf) / fh) + 1):
            cv.fill(mk(a0, a1, gf + k * fh - 0.25, gf + k * fh, 0.005), band, BUILDING, mat, lt)
    a = a0 + rng.uniform(0.3, sp)
    while a + ww < a1 - 0.3:
        if plane == "x":
            z = max(a, ZNEAR)
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
                cv.fill(mk(a - 0.1, a + ww + 0.4, 0.4, gf - 0.7, 0.02), jit(rng, glass, 12), BUILDING, "glass", lt)
            elif r < 0.7:
                cv.fill(mk(a, a + 1.1, 0, 2.3, 0.02), jit(rng, _DOORS[rng.integers(3)], 8), BUILDING, "paint", lt)
            else:
                cv.fill(mk(a, a + ww, 1.1, min(gf - 0.5, 1.1 + wh), 0.02), jit(rng, glass, 10), BUILDING, "glass", lt)
            y0 = gf + sill
            while y0 + wh < h - 0.5:
                if frame is not None and min(hpx, wpx) >= 4:
                    cv.fill(mk(a - 0.08, a + ww + 0.08, y0 - 0.08, y0 + wh + 0.08, 0.01), frame, BUILDING, "paint", lt)
                cv.fill(mk(a, a + ww, y0, y0 + wh, 0.02), jit(rng, glass, 10), BUILDING, "glass", lt)
                y0 += fh
        a += sp
    if shop and rng.random() < 0.35:  # a shop sign band over the ground floor
        s0 = rng.uniform(a0, max(a0, a1 - 4))
        cv.fill(mk(s0, s0 + rng.uniform(2, 6), gf - 0.65, gf - 0.1, 0.03),
                jit(rng, ((200, 30, 30), (30, 60, 160), (230, 200, 40), (240, 240, 240), (30, 130, 60))[rng.integers(5)], 15),
                BUILDING, "paint", lt)


def building_row(cv: Canvas, rng, st: Style, s: int, x: float, z0: float, z1: float, skip, gaps: bool, tall: float):
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
        rgb = jit(rng, st.facades[rng.integers(len(st.facades))], 8)
        _facade(cv, rng, st, "x", x, za, zb, h, rgb, shop=gaps)
        if rng.random() < 0.5:  # pitched roof, its street-side slope is visible
            dr, rise = rng.uniform(3, 6), rng.uniform(2, 4)
            cv.fill(np.array([[x, h, za], [x, h, zb], [x + s * dr, h + rise, zb], [x + s * dr, h + rise, za]]),
                    jit(rng, st.roof, 8), BUILDING, "concrete", cv.light((-s * 0.6, 0.8, 0.0)))
        shadows.append((za, zb, h))
    return shadows


def far_row(cv: Canvas, rng, st: Style, z: float, x0: float, x1: float, hmax: float) -> None:
    """A row of buildings in the plane Z = z facing the camera, from X = x0 to x1."""
    xa = x0
    while xa < x1:
        xb = min(xa + rng.uniform(10, 28), x1)
        h = rng.uniform(7, hmax)
        rgb = jit(rng, st.facades[rng.integers(len(st.facades))], 8)
        _facade(cv, rng, st, "z", z, xa, xb, h, rgb, shop=True)
        xa = xb


def skyline(cv: Canvas, rng, st: Style, z: float) -> None:
    """Distant buildings and tree lines on the horizon of an open street."""
    x0, x1 = cv.x_range(z, 20)
    x = x0
    while x < x1:
        w = rng.uniform(15, 80)
        if rng.random() < 0.5:
            cv.fill(qz(z, x, x + w, 0, rng.uniform(6, 45)), jit(rng, st.facades[rng.integers(len(st.facades))], 10),
                    BUILDING, "plaster")
        else:
            xs = np.linspace(x, x + w, 9)
            top = rng.uniform(8, 22) + rng.uniform(-3, 3, 9)
            pts = [(xs[0], 0)] + list(zip(xs, top)) + [(xs[-1], 0)]
            cv.fill(bill(0, z, pts), jit(rng, st.green, 10), VEG, "foliage")
        x += w


def tree(cv: Canvas, rng, st: Style, x: float, z: float, size: float = 1.0) -> None:
    """Trunk and a crown of overlapping blobs with lighter and darker leaf clusters."""
    th, tw, r = rng.uniform(1.8, 3.5) * size, rng.uniform(0.2, 0.4) * size, rng.uniform(1.4, 3.0) * size
    cy = th + r * 0.8
    green = jit(rng, st.green, 12)
    if rng.random() < 0.15:  # autumn
        green = jit(rng, (140, 120, 40), 15)
    lt = cv.light((0.0, 0.3, -0.95))
    cv.fill(bill(x, z, [(-tw / 2, 0), (tw / 2, 0), (tw / 3, cy), (-tw / 3, cy)]), grey(rng, 50, 90, 8), VEG, "concrete", lt)
    for _ in range(int(rng.integers(4, 9)) if cv.px(r, z) >= 4 else 1):
        bx, by, br = rng.normal(0, 0.45 * r), cy + rng.normal(0, 0.3 * r), rng.uniform(0.45, 0.75) * r
        cv.fill(bill(x, z + 0.01, ellipse(bx, by, br, br * rng.uniform(0.8, 1.1))),
                scale(green, 0.8 + 0.15 * (by - cy) / r), VEG, "foliage", lt)
    if cv.px(0.3 * r, z) >= 5:
        for _ in range(int(rng.integers(8, 20))):
            bx, by, br = rng.normal(0, 0.5 * r), cy + rng.normal(0, 0.4 * r), rng.uniform(0.15, 0.32) * r
            cv.fill(bill(x, z - 0.01, ellipse(bx, by, br, br)), scale(green, rng.uniform(0.7, 1.35)), VEG, "foliage", lt)
    if cv.dif > 0.3:  # crown shadow on the ground, pushed away from the sun
        dx, dz = -cv.sun[0] / cv.sun[1] * cy, -cv.sun[2] / cv.sun[1] * cy
        pts = np.column_stack([x + dx + r * CIRCLE.real, np.zeros(16), z + dz + r * 0.9 * CIRCLE.imag])
        cv.cast(pts)


def hedge(cv: Canvas, rng, st: Style, s: int, x: float, z0: float, z1: float) -> None:
    h = rng.uniform(0.6, 1.6)
    green = jit(rng, st.green, 10)
    n = max(2, min(60, int((z1 - z0) / 0.6)))
    zs = np.linspace(z0, z1, n)
    top = h + rng.uniform(-0.12, 0.12, n)
    face = np.column_stack([np.full(n + 2, x), np.r_[0, top, 0], np.r_[z0, zs, z1]])
    if h < cv.hc:
        cv.fill(qg(x, x + s * 0.8, z0, z1, h), scale(green, 1.1), VEG, "foliage", cv.light((0, 1, 0)))
    cv.fill(face, green, VEG, "foliage", cv.light((-s, 0.0, 0.0)))


def wall(cv: Canvas, rng, st: Style, s: int, x: float, z0: float, z1: float) -> None:
    h = rng.uniform(0.5, 2.6)
    rgb = grey(rng, 95, 175, 5) if rng.random() < 0.7 else jit(rng, st.facades[rng.integers(len(st.facades))], 8)
    lt = cv.light((-s, 0.0, 0.0))
    if h < cv.hc:
        cv.fill(qg(x, x + s * 0.25, z0, z1, h), scale(rgb, 1.1), WALL, "concrete", cv.light((0, 1, 0)))
    cv.fill(qx(x, z0, z1, 0, h), rgb, WALL, "concrete", lt)
    cv.fill(qx(x - s * 0.01, z0, z1, h - 0.12, h), scale(rgb, 1.15), WALL, "concrete", lt)
    if rng.random() < 0.5:  # stains / posters make walls look less like plain building
        for _ in range(int(rng.integers(1, 4))):
            za = rng.uniform(z0, max(z0, z1 - 2))
            cv.fill(qx(x - s * 0.02, za, za + rng.uniform(0.8, 2.5), 0.1, rng.uniform(0.3, h * 0.9)),
                    scale(rgb, rng.uniform(0.75, 0.9)), WALL, "concrete", lt)


def fence(cv: Canvas, rng, st: Style, s: int, x: float, z0: float, z1: float) -> None:
    """Posts, rails and bars/slats; bars too dense to resolve are drawn as one mesh face."""
    h = rng.uniform(0.9, 2.0)
    rgb = (grey(rng, 30, 70, 3), jit(rng, (45, 75, 55), 8), grey(rng, 120, 170, 4), jit(rng, (120, 90, 60), 10))[rng.integers(4)]
    lt = cv.light((-s, 0.0, 0.0))
    pitch = rng.uniform(0.12, 0.3)
    post = rng.uniform(2.0, 3.0)
    z = z0
    while z < z1:
        zb = min(z + post, z1)
        if cv.f * pitch * abs(x) / z**2 < 3 or cv.px(0.05, z) < 0.6:
            cv.fill(qx(x, z, zb, 0.05, h), scale(rgb, 1.1), FENCE, "flat", lt)
        else:
            cv.line(np.array([[x, 0.1, z], [x, 0.1, zb]]), rgb, FENCE, "paint", 0.04, lt)
            cv.line(np.array([[x, h - 0.05, z], [x, h - 0.05, zb]]), rgb, FENCE, "paint", 0.04, lt)
            for zz in np.arange(z + pitch / 2, zb, pitch):
                cv.line(np.array([[x, 0.05, zz], [x, h, zz]]), rgb, FENCE, "paint", 0.03, lt)
        cv.fill(qx(x - s * 0.02, z - 0.04, z + 0.04, 0, h + 0.05), scale(rgb, 0.9), FENCE, "paint", lt)
        z = zb
