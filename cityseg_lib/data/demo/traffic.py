"""The street's objects of one demo frame: poles, signs, lights, street trees, people, riders,
parked two-wheelers, things, and moving and parked traffic, each queued with ``add(z, draw, ...)``
so the scene draws them far to near. Called by :func:`cityseg_lib.data.demo.scene._scene` with
the street's cross-section; the order of random draws is part of the dataset's identity."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from cityseg_lib.data.demo.buildings import tree
from cityseg_lib.data.demo.canvas import jit
from cityseg_lib.data.demo.furniture import dynamic_thing, lamp, light_pole, sign_post, static_thing
from cityseg_lib.data.demo.people import person, two_wheeler
from cityseg_lib.data.demo.style import Style
from cityseg_lib.data.demo.vehicles import bus, car, truck

__all__ = ["street_objects"]


def street_objects(rng: np.random.Generator, st: Style, add: Callable, *, edge: dict, sw: dict, e_sw: dict,
                   z_end: float, inter, same: list, onc: list, park: dict, tram_x, tree_pits: list, skip) -> None:
    """Queue every street object of the frame (see the module docstring)."""
    for s in (-1, 1):
        z = rng.uniform(3, 25)
        step = rng.uniform(18, 35)
        while z < min(z_end, 250):
            add(z, lamp, s, edge[s] + s * rng.uniform(0.4, 0.7), z)
            z += step
    for s, x, z in tree_pits:
        add(z, tree, st, x, z)
    for _ in range(int(rng.poisson(1.8))):
        s = 1 if rng.random() < 0.6 else -1
        z = rng.uniform(6, 70)
        add(z, sign_post, edge[s] + s * rng.uniform(0.3, 0.8), z, s > 0 or rng.random() < 0.4)
    if inter is not None:
        zi = inter[0]
        for s in (-1, 1):
            z = zi - rng.uniform(0.5, 2.0)
            arm = edge[s] - s * rng.uniform(3, 5) if s > 0 and rng.random() < 0.5 else None
            add(z, light_pole, s, edge[s] + s * 0.6, z, True, arm)
            z2 = zi + inter[1] + rng.uniform(0.5, 2)
            add(z2, light_pole, s, edge[s] + s * 0.6, z2, rng.random() < 0.5, None)
    for _ in range(int(rng.poisson(0.4))):
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(8, 50)
        add(z, light_pole, s, edge[s] + s * 0.5, z, True, None)
    n_people = int(rng.poisson(st.people))
    for _ in range(n_people):
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(6, 60)
        x = edge[s] + s * rng.uniform(0.5, max(0.6, sw[s] - 0.3))
        add(z, person, x, z, rng.random() < 0.25)
    if inter is not None:
        for _ in range(int(rng.poisson(1.2))):
            z = inter[0] - rng.uniform(1, 4)
            x = rng.uniform(edge[-1] + 0.5, edge[1] - 0.5)
            add(z, person, x, z, True)
    for _ in range(int(rng.poisson(1.3))):  # riders
        motor = rng.random() < 0.35
        if inter is not None and rng.random() < 0.3:
            z = inter[0] + rng.uniform(2, inter[1] - 2)
            x, head = rng.uniform(edge[-1] - 3, edge[1] + 3), (math.pi / 2 if rng.random() < 0.5 else -math.pi / 2)
        elif rng.random() < 0.7 or not onc:
            z, x, head = rng.uniform(7, 50), edge[1] - 2.2 * park[1] - rng.uniform(0.6, 1.2), rng.normal(0, 0.15)
        else:
            z, x, head = rng.uniform(10, 60), edge[-1] + 2.2 * park[-1] + rng.uniform(0.6, 1.2), math.pi + rng.normal(0, 0.15)
        add(z - 0.7, two_wheeler, x, z, head, motor, True)
    for _ in range(int(rng.poisson(0.8))):  # parked bicycles (often several in a rack)
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(6, 40)
        head = s * rng.uniform(0.9, 1.5)
        for k in range(int(rng.integers(1, 4))):
            x = e_sw[s] - s * rng.uniform(0.5, 0.8)
            add(z + 0.8 * k - 0.7, two_wheeler, x, z + 0.8 * k, head, False, False)
    for _ in range(int(rng.poisson(0.25))):  # parked motorcycles
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(6, 40)
        add(z - 0.8, two_wheeler, edge[s] - s * 0.8, z, s * rng.uniform(0.3, 1.2), True, False)
    for _ in range(int(rng.poisson(1.0))):
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(5, 50)
        add(z, static_thing, edge[s] + s * rng.uniform(0.5, max(0.6, sw[s] - 0.4)), z)
    for _ in range(int(rng.poisson(0.2))):
        s = 1 if rng.random() < 0.5 else -1
        z = rng.uniform(5, 40)
        add(z, dynamic_thing, edge[s] + s * rng.uniform(0.5, max(0.6, sw[s] - 0.4)), z)

    def vehicle(x: float, z: float, away: bool, kinds=(0.85, 0.08, 0.07)) -> float:
        k = rng.choice(3, p=kinds)
        L = (4.9, 10.0, 13.5)[k]
        fn = (car, truck, lambda c, r, xc, z0, aw: bus(c, r, xc, z0, aw, jit(r, st.bus_rgb, 6)))[k]
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
        add(z, lambda c, r, xc, z0, aw: bus(c, r, xc, z0, aw, jit(r, st.tram_rgb, 6), tram=True), tram_x, z, away)
