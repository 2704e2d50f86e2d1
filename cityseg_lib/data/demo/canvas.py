"""Drawing primitives of the demo data: world-space geometry and colour helpers, labelIds and
materials, and :class:`Canvas`, which rasterises world polygons into a part-id map."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from cityseg_lib.data.labels import LABELS

ZNEAR = 0.5  # metres: polygons are clipped to Z >= this before projection

# labelIds drawn here (official values, see labels.py)
EGO, STATIC, DYNAMIC, GROUND = 1, 4, 5, 6
ROAD, SIDEWALK, PARKING, RAIL = 7, 8, 9, 10
BUILDING, WALL, FENCE, POLE, LIGHT, SIGN = 11, 12, 13, 17, 19, 20
VEG, TERRAIN, SKY = 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTO, BIKE = 24, 25, 26, 27, 28, 31, 32, 33
_HAS_INSTANCES = frozenset(lb.id for lb in LABELS if lb.has_instances and lb.id >= 0)

# Materials: amplitudes of fine (1 px), medium (~4 px) and large (~50 px) luminance noise, and
# whether cast shadows darken it (ground only: shadows are drawn on the ground plane).
MATERIALS = {
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
MAT = {name: i for i, name in enumerate(MATERIALS)}

CIRCLE = np.exp(1j * np.linspace(0, 2 * np.pi, 17)[:-1])  # unit circle, 16 points
Color = tuple  # (r, g, b) floats


# ----------------------------------------------------------------------------- geometry helpers
def qx(x: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
    """(4, 3) quad in the vertical plane X = x (a facade or car side along the street)."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]], dtype=float)


def qz(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """(4, 3) quad in the vertical plane Z = z (faces the camera)."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def qg(x0: float, x1: float, z0: float, z1: float, y: float = 0.0) -> np.ndarray:
    """(4, 3) horizontal quad at height y (ground, sidewalk, roofs of low things)."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], dtype=float)


def bill(cx: float, cz: float, uv) -> np.ndarray:
    """Billboard: 2-D points (u right, v up, metres) in the plane Z = cz around X = cx -> (N, 3)."""
    uv = np.asarray(uv, dtype=float).reshape(-1, 2)
    return np.column_stack([cx + uv[:, 0], uv[:, 1], np.full(len(uv), cz)])


def local(cx: float, cz: float, heading: float, uv) -> np.ndarray:
    """Points in the vertical plane through (cx, cz) along ``heading`` (0 = away from camera)."""
    uv = np.asarray(uv, dtype=float).reshape(-1, 2)
    return np.column_stack([cx + uv[:, 0] * math.sin(heading), uv[:, 1], cz + uv[:, 0] * math.cos(heading)])


def ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """(16, 2) ellipse outline in 2-D (u, v) coordinates."""
    return np.column_stack([cx + rx * CIRCLE.real, cy + ry * CIRCLE.imag])


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


def jit(rng: np.random.Generator, rgb, s: float) -> Color:
    """Colour ``rgb`` with Gaussian jitter of ``s`` grey levels per channel, clipped to 0..255."""
    return tuple(float(min(255.0, max(0.0, c + rng.normal(0, s)))) for c in rgb)


def grey(rng: np.random.Generator, lo: float, hi: float, tint: float = 4.0) -> Color:
    g = rng.uniform(lo, hi)
    return tuple(float(min(255.0, max(0.0, g + rng.normal(0, tint)))) for _ in range(3))


def scale(rgb, k: float) -> Color:
    return tuple(min(255.0, c * k) for c in rgb)


# ----------------------------------------------------------------------------- the canvas
class Canvas:
    """Rasterises world polygons (X right, Y up, Z forward; metres) into an (H, W) part-id map.

    A *part* is one flat-coloured piece (a window, a car side, a leaf cluster) with a colour
    (already lit and hazed by its depth), a material (its texture) and a label value (the labelId,
    or labelId*1000+k for instance classes, as in ``*_instanceIds.png``). Cast shadows go to a
    separate (H, W) uint8 layer.
    """

    def __init__(self, W: int, H: int, f: float, hy: float, vx: float, hc: float, sun, amb: float,
                 dif: float, haze: Color, visibility: float):
        self.W, self.H, self.f, self.hy, self.vx, self.hc = W, H, f, hy, vx, hc
        self.sun, self.amb, self.dif = sun, amb, dif
        self.haze, self.visibility = haze, visibility
        self.parts = Image.new("I", (W, H), 0)
        self.draw = ImageDraw.Draw(self.parts)
        self.shadow = Image.new("L", (W, H), 0)
        self._sdraw = ImageDraw.Draw(self.shadow)
        self.colors: list[Color] = [(0.0, 0.0, 0.0)]
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
        self.mats.append(MAT[mat])
        return len(self.values) - 1

    def project(self, P: np.ndarray) -> tuple[list, float] | None:
        """World polygon (N, 3) -> (flat pixel list x0, y0, x1, ..., mean depth), or None if behind."""
        z = P[:, 2]
        if min(z.tolist()) < ZNEAR:  # (Python's min is faster than numpy's on 4..16 values)
            P = _clip_near(P, ZNEAR)
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
        return self.f * size_m / max(z, ZNEAR)

    def x_range(self, z: float, margin: float = 0.0) -> tuple[float, float]:
        """World X range visible at depth ``z`` (widened by ``margin`` metres)."""
        return (-self.vx * z / self.f - margin, (self.W - self.vx) * z / self.f + margin)
