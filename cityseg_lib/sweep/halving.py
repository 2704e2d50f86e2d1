"""Successive halving, the pure maths: candidates of a grid, the rung plan, and who survives.

No files, no training: these functions decide from numbers alone, so the sweep's results do not
depend on how many workers ran it or in which order trials finished.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from cityseg_lib.errors import CitysegError

__all__ = ["Candidate", "Rung", "grid_candidates", "plan_rungs", "rank_key", "select_survivors", "format_plan"]


@dataclass(frozen=True)
class Candidate:
    """One configuration of the grid: ``index`` in grid order, ``id`` like ``c07``."""

    index: int
    id: str
    params: dict


@dataclass(frozen=True)
class Rung:
    """One round of training: ``candidates`` trials on ``subset`` images for ``epochs`` epochs,
    of which ``keep`` go on (``final``: the last rung, on the whole training set, keep = 1)."""

    index: int
    candidates: int
    keep: int
    subset: int
    fraction: float
    epochs: int
    final: bool

    @property
    def image_epochs(self) -> int:
        """Training cost of the rung: images seen by all its trials together."""
        return self.candidates * self.subset * self.epochs


def grid_candidates(grid: dict[str, list]) -> list[Candidate]:
    """Every combination of ``grid``, in a stable order (the last key varies fastest).

    Ids are ``c`` plus the zero-padded index (``c00`` .. ``c35``), so they sort like the index.
    """
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    width = max(2, len(str(len(combos) - 1)))
    return [Candidate(i, f"c{i:0{width}d}", dict(zip(keys, combo))) for i, combo in enumerate(combos)]


def plan_rungs(n_candidates: int, n_train: int, min_subset: int = 1, rung_epochs: int = 20,
               final_epochs: int = 0) -> list[Rung]:
    """The rungs of a halving sweep of ``n_candidates`` over ``n_train`` training images.

    Rung sizes are ``n, ceil(n/2), ...`` down to 2 (one rung only when n <= 2); the last rung is
    the final one, on the whole training set. With ``R`` halvings, rung ``r`` trains on
    ``min(n_train, max(min_subset, ceil(n_train / 2**(R - r))))`` images -- 1/32 of the data at
    rung 0 for 36 candidates -- so the subset doubles from rung to rung.
    """
    if n_candidates < 1:
        raise CitysegError("sweep grid has no candidates")
    if n_train < 1:
        raise CitysegError("sweep needs at least one training image")
    sizes = [n_candidates]
    while sizes[-1] > 2:
        sizes.append(math.ceil(sizes[-1] / 2))
    halvings = len(sizes) - 1
    rungs = []
    for r, count in enumerate(sizes):
        final = r == halvings
        subset = n_train if final else min(n_train, max(min_subset, math.ceil(n_train / 2 ** (halvings - r))))
        rungs.append(Rung(
            index=r, candidates=count, keep=1 if final else sizes[r + 1], subset=subset,
            fraction=subset / n_train, epochs=(final_epochs or rung_epochs) if final else rung_epochs, final=final,
        ))
    return rungs


def rank_key(index: int, loss: float) -> tuple:
    # non-finite losses (failed trials) rank last; ties go to the lower candidate index
    finite = isinstance(loss, (int, float)) and math.isfinite(loss)
    return (0, loss, index) if finite else (1, 0.0, index)


def select_survivors(results: dict[int, float], keep: int) -> list[int]:
    """At most ``keep`` candidate indices with the lowest loss, best first.

    ``results`` maps candidate index -> best validation loss; ties are broken by the lower index,
    so the decision depends on the losses alone. A failed trial (NaN/inf loss) never survives,
    even when fewer than ``keep`` trials succeeded: on more data it would fail again, or be named
    a finalist with no loss to show.
    """
    ranked = sorted((i for i in results if rank_key(i, results[i])[0] == 0), key=lambda i: rank_key(i, results[i]))
    return ranked[:keep]


def format_plan(plan: list[Rung], n_train: int, title: str = "") -> str:
    """The rung plan as a table, with its cost in image-epochs against training the full grid.

    The full grid means every candidate trained like the final two: all ``n_train`` images for
    the final rung's epochs. Only training images count: every trial also evaluates the whole
    validation split once per epoch, a cost the same for every rung's trials.
    """
    lines = [title] if title else []
    lines.append(f"{plan[0].candidates} candidates, {n_train} training images, {len(plan)} rungs")
    lines.append(f"{'rung':>4}  {'candidates':>10}  {'keep':>4}  {'subset':>7}  {'fraction':>8}  {'epochs':>6}  "
                 f"{'image-epochs':>12}")
    for r in plan:
        frac = "all" if r.subset >= n_train else f"{100 * r.fraction:.1f}%"
        lines.append(f"{r.index:>4}  {r.candidates:>10}  {r.keep:>4}  {r.subset:>7}  {frac:>8}  {r.epochs:>6}  "
                     f"{r.image_epochs:>12,}")
    total = sum(r.image_epochs for r in plan)
    full = plan[0].candidates * n_train * plan[-1].epochs
    lines.append(f"total {total:,} image-epochs = {100 * total / full:.1f}% of the full grid "
                 f"({plan[0].candidates} x {n_train} images x {plan[-1].epochs} epochs = {full:,})")
    return "\n".join(lines)
