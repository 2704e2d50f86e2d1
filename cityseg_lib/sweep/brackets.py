"""The sweep's brackets figure: validation loss of every candidate across rungs (one panel)."""

from __future__ import annotations

from cityseg_lib.sweep.records import read_trials

__all__ = ["plot_brackets"]


def plot_brackets(trials, ax=None):
    """Val loss of each candidate across rungs: one line per candidate, the winner highlighted.

    ``trials`` is :func:`read_trials`'s DataFrame (or a sweep folder / trials.csv path). Lines
    end where a candidate was dropped; failed trials (val loss inf) are left out. Returns ``ax``.
    """
    import numpy as np
    from matplotlib import colormaps

    if not hasattr(trials, "columns"):
        trials = read_trials(trials)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4.5))
    ok = trials[np.isfinite(trials["best_val_loss"].astype(float))]
    last_rung = int(trials["rung"].max())
    winner = trials.loc[trials["decision"] == "winner", "candidate"]
    winner = winner.iloc[0] if len(winner) else None
    for cand, g in ok.groupby("candidate", sort=True):
        g = g.sort_values("rung")
        reached = int(g["rung"].max())
        if cand == winner:
            ax.plot(g["rung"], g["best_val_loss"], "o-", color="C3", lw=2.5, zorder=3, label=f"winner {cand}")
        else:
            # colour by the last rung reached (purple: dropped first); stop at 0.75, before viridis turns pale yellow
            shade = colormaps["viridis"](0.75 * reached / max(last_rung, 1))
            ax.plot(g["rung"], g["best_val_loss"], ".-", color=shade, lw=1.2, alpha=0.85)
        if reached == last_rung:
            ax.annotate(cand, (reached, g["best_val_loss"].iloc[-1]), xytext=(4, 0), textcoords="offset points",
                        fontsize=8, va="center")
    subsets = trials.groupby("rung")["subset"].max()
    ax.set_xticks(list(subsets.index), [f"rung {r}\n{n} img" for r, n in subsets.items()])
    ax.set_xlim(-0.3, last_rung + 0.6)
    ax.set_ylabel("best validation loss")
    ax.set_title(f"halving sweep: {trials.loc[trials['rung'] == 0, 'candidate'].nunique()} candidates")
    if winner is not None:
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return ax
