"""The report's run readers: what ``ctx.runs`` is. :class:`StoredRuns` reads run folders through
:mod:`cityseg_lib.runstore`, each file once per report; :class:`MemoryRuns` holds hand-made runs (tests).
Both answer the same questions: a run's record, summary, metrics, config, per-image matrices and model
statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError

__all__ = ["StoredRuns", "MemoryRuns"]


class StoredRuns:
    """Run folders read through :mod:`cityseg_lib.runstore`, each file once per report."""

    def __init__(self) -> None:
        self._cache: dict[tuple, object] = {}

    def _get(self, kind: str, run: str, load):
        key = (kind, run)
        if key not in self._cache:
            self._cache[key] = load(run)
        return self._cache[key]

    def record(self, run: str) -> dict:
        from cityseg_lib import runstore

        return self._get("record", run, runstore.run_record)

    def summary(self, run: str) -> dict:
        from cityseg_lib import runstore

        return self._get("summary", run, runstore.load_summary)

    def metrics(self, run: str) -> pd.DataFrame:
        from cityseg_lib import runstore

        return self._get("metrics", run, runstore.load_metrics)

    def config(self, run: str) -> TrainConfig:
        from cityseg_lib import runstore

        return self._get("config", run, runstore.load_config)

    def per_image(self, run: str) -> np.ndarray | None:
        """Full-resolution per-image confusion matrices ``(N, C, C+1)``, or None when the run has none."""
        from cityseg_lib import runstore

        def load(r):
            try:
                return runstore.load_per_image(r)[1]
            except CitysegError:
                return None

        return self._get("per_image", run, load)

    def scoring_pair(self, run: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The per-image matrices of the final evaluation at the training size and at full resolution,
        on the frames both scored, in one order: ``(train_size, full_res)``, each ``(N, C, C+1)``;
        None when the run lacks either file (a run trained before the training-size ones were kept)."""
        from cityseg_lib import runstore

        def load(r):
            try:
                (ids_t, train), (ids_f, full) = runstore.load_per_image(r, full_res=False), runstore.load_per_image(r)
            except CitysegError:
                return None
            where = {i: k for k, i in enumerate(ids_t)}
            both = [(where[i], k) for k, i in enumerate(ids_f) if i in where]
            if not both:
                return None
            rows_t, rows_f = (list(x) for x in zip(*both))
            return train[rows_t], full[rows_f]

        return self._get("scoring_pair", run, load)

    def model_stats(self, run: str) -> dict:
        from cityseg_lib import runstore

        return self._get("model_stats", run, runstore.model_stats)


@dataclass
class MemoryRuns:
    """Hand-made runs: ``{run: value}`` per kind (records, summaries, metrics, configs, per_image, ...)."""

    records: dict = field(default_factory=dict)
    summaries: dict = field(default_factory=dict)
    metric_frames: dict = field(default_factory=dict)
    configs: dict = field(default_factory=dict)
    per_images: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    scoring_pairs: dict = field(default_factory=dict)

    def record(self, run: str) -> dict:
        return self.records[run]

    def summary(self, run: str) -> dict:
        return self.summaries[run]

    def metrics(self, run: str) -> pd.DataFrame:
        return self.metric_frames[run]

    def config(self, run: str) -> TrainConfig:
        return self.configs[run]

    def per_image(self, run: str) -> np.ndarray | None:
        return self.per_images.get(run)

    def scoring_pair(self, run: str) -> tuple[np.ndarray, np.ndarray] | None:
        return self.scoring_pairs.get(run)

    def model_stats(self, run: str) -> dict:
        return self.stats[run]
