"""How long a set of runs takes on N workers (GPUs), given that only the sweep's rungs wait.

The study's runs are independent, except inside a halving sweep: a rung starts when every trial
of the previous rung has finished (it needs their losses), and the tuned winner after the final
rung. So the study is a set of independent runs plus *chains* of stages. :func:`makespan`
simulates the executor: every free worker takes the next ready run -- a trial of a chain's
current stage first (chains gate later work: the critical path), the longest first -- and a
chain's next stage becomes ready when its current one is done. List scheduling is within a
factor of two of the optimum; :func:`lower_bound` gives the bound no schedule can beat, so the
printed numbers bracket the truth.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

__all__ = ["makespan", "lower_bound"]

Chain = Sequence[Sequence[float]]  # stages, each a list of run durations


def lower_bound(independent: Sequence[float], chains: Sequence[Chain], workers: int) -> float:
    """max(all work / workers, the longest chain run stage by stage with unlimited workers, the longest run)."""
    work = sum(independent) + sum(d for chain in chains for stage in chain for d in stage)
    chain_path = max((sum(max(stage, default=0.0) for stage in chain) for chain in chains), default=0.0)
    longest = max([*independent, *(d for chain in chains for stage in chain for d in stage)], default=0.0)
    return max(work / max(workers, 1), chain_path, longest)


def makespan(independent: Sequence[float], chains: Sequence[Chain], workers: int) -> float:
    """Wall time of list scheduling on ``workers``: chain trials first (longest remaining chain
    first), then independent runs longest first. Durations in any unit; returns the same unit."""
    if workers < 1:
        raise ValueError("workers must be >= 1")
    chains = [[sorted(stage, reverse=True) for stage in chain if len(stage)] for chain in chains]
    remaining = [sum(max(stage) for stage in chain) for chain in chains]  # the chain's critical path left
    stage_of = [0] * len(chains)
    ready_chain = {c: list(chain[0]) for c, chain in enumerate(chains) if chain}
    left_in_stage = {c: len(chain[0]) for c, chain in enumerate(chains) if chain}
    ready = sorted(independent, reverse=True)
    running: list[tuple[float, int]] = []  # (end time, chain index or -1)
    now, free = 0.0, workers
    while ready or ready_chain or running:
        while free and (ready_chain or ready):
            if ready_chain:
                c = max(ready_chain, key=lambda i: remaining[i])
                duration = ready_chain[c].pop(0)
                if not ready_chain[c]:
                    del ready_chain[c]
            else:
                c, duration = -1, ready.pop(0)
            heapq.heappush(running, (now + duration, c))
            free -= 1
        now, c = heapq.heappop(running)
        free += 1
        if c >= 0:
            left_in_stage[c] -= 1
            if left_in_stage[c] == 0:  # the barrier: the next stage of this chain may start
                remaining[c] -= max(chains[c][stage_of[c]])
                stage_of[c] += 1
                if stage_of[c] < len(chains[c]):
                    ready_chain[c] = list(chains[c][stage_of[c]])
                    left_in_stage[c] = len(chains[c][stage_of[c]])
    return now
