"""Table cells of the report's uncertain numbers: a score with its 95% interval, a paired difference
with its interval, whether it is a finding, and the header of a variant table's difference column.

The numbers come from :mod:`.evidence` (computed once per context); this module only prints them,
so every table shows the interval the prose states.
"""

from __future__ import annotations

from cityseg_lib.evaluate.uncertainty import Difference, Interval, bootstrap_ci
from cityseg_lib.evaluate.wording import fixed_point
from cityseg_lib.report.context import ReportContext
from cityseg_lib.report.evidence import Comparison, _memo, interval

__all__ = ["interval_cell", "train_size_cell", "difference_cell", "finding_cell", "versus_column"]


def _cell(iv: Interval) -> str:
    """``"31.2 (28.0-34.5)"``, each number as the prose prints it (:func:`fixed_point`: a score of 0.04%
    reads 0.04 in the table as in the sentence, not 0.0)."""
    return f"{fixed_point(100 * iv.value)} ({fixed_point(100 * iv.low)}-{fixed_point(100 * iv.high)})"


def interval_cell(ctx: ReportContext, run: str) -> str:
    """Table cell under a "% [95% CI]" header: ``"31.2 (28.0-34.5)"``, or the plain score."""
    iv = interval(ctx, run)
    return f"{100 * ctx.record(run)['miou_full_res']:.1f}" if iv is None else _cell(iv)


def train_size_cell(ctx: ReportContext, run: str) -> str:
    """The same cell for the run's mIoU at the training size, its interval from the training-size
    per-image matrices (:meth:`StoredRuns.scoring_pair`); the plain score for a run without them."""
    def make():
        pair = ctx.runs.scoring_pair(run)
        return None if pair is None else bootstrap_ci(pair[0], n_boot=ctx.n_boot)

    iv = _memo(ctx, ("train_size_interval", run), make)
    return f"{100 * ctx.record(run)['miou']:.1f}" if iv is None else _cell(iv)


def difference_cell(c: Comparison | Difference | None, sign: int = 1) -> str:
    """Table cell of a paired difference in points with its interval: ``"+1.5 (+1.0 to +2.0)"``;
    ``sign`` -1 shows ``b - a`` (a variant's row when the comparison is main minus variant); a dash
    without a comparison."""
    d = c.diff if isinstance(c, Comparison) else c
    if d is None:
        return "–"
    low, high = sorted((sign * d.low, sign * d.high))
    return f"{_points(sign * d.difference)} ({_points(low)} to {_points(high)})".replace("-", "−")


def _points(x: float) -> str:
    """A signed difference of fractions in points, one decimal; a non-zero value that one decimal
    would show as 0.0 gets decimals to its first significant digit ("-0.03"; :func:`fixed_point`), so
    that a bound that excludes zero never reads as zero."""
    s = fixed_point(100 * x)
    return s if s.startswith("-") else "+" + s


def finding_cell(c: Comparison | None) -> str:
    return "–" if c is None else "yes" if c.resolved else "unresolved"


def versus_column(comps: list[Comparison | None], main: str) -> str:
    """Header of the difference column: ``"vs AdamW, same seed (points)"`` when a variant is matched with
    the main run of its seed, ``"vs AdamW, 3 seeds pooled (points)"`` when the main side's seeds are pooled."""
    diffs = [c.diff for c in comps if c is not None and c.diff]
    if diffs and all(d.matched_seed is not None for d in diffs):
        seeds = {d.matched_seed for d in diffs}
        return f"vs {main}, seed {seeds.pop()} (points)" if len(seeds) == 1 else f"vs {main}, same seed (points)"
    n = max((max(d.n_seeds_a, d.n_seeds_b) for d in diffs), default=1)
    return f"vs {main} (points)" if n < 2 else f"vs {main}, {n} seeds pooled (points)"
