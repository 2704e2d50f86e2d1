"""The words of :mod:`cityseg_lib.evaluate.uncertainty`'s numbers: verdicts, intervals and seed spreads.

Every sentence is computed from a :class:`Difference`, :class:`Interval` or seed spread, so the
report can never claim more than its numbers carry: a winner is named only for a resolved
difference. Fractions in, percentage points out, one decimal, never "-0.0"; a non-zero value that
one decimal would show as 0.0 gets one significant digit ("0.04"), so that a resolved difference
never reads "95% CI 0.0 to 1.5".
"""

from __future__ import annotations

from cityseg_lib.evaluate.uncertainty import Difference, Interval

__all__ = ["verdict", "format_interval", "format_spread", "fixed_point"]


def fixed_point(v: float, digits: int = 1) -> str:
    """``v`` with ``digits`` decimals, never ``-0.0`` and never an exponent; a non-zero value that
    would show as zero gets decimals until its first significant digit (0.0004 -> ``"0.0004"``), so
    a bound that excludes zero (or a ratio that excludes 1, shown as ``v - 1``) never reads as one."""
    s = f"{v:.{digits}f}"
    d = digits
    while v != 0 and not s.strip("-0.") and d < 12:
        d += 1
        s = f"{v:.{d}f}"
    return s.lstrip("-") if not s.strip("-0.") else s


def _pp(x: float) -> str:
    """A fraction as percentage points with one decimal (:func:`fixed_point`: 0.0004 -> '0.04',
    -0.00002 -> '-0.002', never '-0.0' nor '1e-05')."""
    return fixed_point(100 * x)


def _level(level: float) -> str:
    return f"{100 * level:g}% CI"


def verdict(diff: Difference, name_a: str, name_b: str, metric: str = "mIoU") -> str:
    """One sentence computed from the numbers, in points; a winner is named (first) only when resolved.

    "U-Net beats SimpleFCN by 4.2 mIoU points (95% CI 1.1 to 7.3; 3 of 3 seeds agree)." /
    "U-Net vs SimpleFCN: 0.8 mIoU points (95% CI -1.5 to 3.0); the difference is unresolved at this
    validation size." / "...; the interval excludes zero but the seeds disagree (2 of 3 agree in
    sign), so the difference is unresolved." ``metric=""`` drops the metric name.
    """
    text = _verdict(diff, name_a, name_b, metric)
    return text[:1].upper() + text[1:]  # a label may open it in lower case: "no augmentation beats ..."


def _verdict(diff: Difference, name_a: str, name_b: str, metric: str) -> str:
    unit = f"{metric} points" if metric else "points"
    ci = _level(diff.level)
    # seed i against seed i ("seeds"), or every run of one side against every run of the other
    pairs = "seeds" if len(diff.seed_differences) == diff.n_seeds_a == diff.n_seeds_b else "seed pairs"
    agree = f"{diff.n_seeds_agreeing} of {len(diff.seed_differences)}"
    seeds = f"; {agree} {pairs} agree" if diff.seeds_agree is not None else ""
    if diff.matched_seed is not None:  # a single run against the run of its own seed (compare_groups)
        ci_end = f", seed {diff.matched_seed} against seed {diff.matched_seed}"
    else:
        ci_end = ""
    if diff.resolved:
        if diff.difference >= 0:
            win, lose, d, lo, hi = name_a, name_b, diff.difference, diff.low, diff.high
        else:
            win, lose, d, lo, hi = name_b, name_a, -diff.difference, -diff.high, -diff.low
        return f"{win} beats {lose} by {_pp(d)} {unit} ({ci} {_pp(lo)} to {_pp(hi)}{ci_end}{seeds})."
    head = f"{name_a} vs {name_b}: {_pp(diff.difference)} {unit} ({ci} {_pp(diff.low)} to {_pp(diff.high)}{ci_end}"
    if diff.excludes_zero and diff.seeds_agree is False:
        return (f"{head}); the interval excludes zero but the {pairs} disagree ({agree} agree in sign), "
                "so the difference is unresolved.")
    return f"{head}{seeds}); the difference is unresolved at this validation size."


def format_interval(iv: Interval) -> str:
    """``"31.2% (95% CI 28.0-34.5)"``."""
    return f"{_pp(iv.value)}% ({_level(iv.level)} {_pp(iv.low)}-{_pp(iv.high)})"


def format_spread(spread: dict[str, float]) -> str:
    """``"31.2% ± 0.8 (3 seeds, range 30.4-32.0)"``; ``"31.2% (1 seed)"`` for a single run."""
    if (n := int(spread["n"])) < 2:
        return f"{_pp(spread['mean'])}% (1 seed)"
    return (f"{_pp(spread['mean'])}% ± {_pp(spread['std'])} "
            f"({n} seeds, range {_pp(spread['min'])}-{_pp(spread['max'])})")
