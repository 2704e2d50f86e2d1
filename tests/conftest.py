"""Shared fixtures: tiny generated datasets, isolated caches and run folders, offline hub."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the network for weights
os.environ.setdefault("CI", "true")  # no progress bars in test output
# Module- and session-scoped fixtures (a tiny trained run, a Ray cluster whose workers keep the
# environment they started with) run before the autouse fixture below: give them a cache of this
# test process too, never PROJECT/data/cache or the user's $CITYSEG_CACHE.
_PROCESS_CACHE = tempfile.mkdtemp(prefix="cityseg-test-cache-")
os.environ["CITYSEG_CACHE"] = _PROCESS_CACHE
atexit.register(shutil.rmtree, _PROCESS_CACHE, True)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path_factory, monkeypatch):
    """Keep caches and runs of every test out of the repository."""
    monkeypatch.setenv("CITYSEG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test (timings and numerics as the demo's single-threaded runs), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A tiny demo dataset (128x64): 6 train, 3 val, 2 test frames, fine and coarse labels."""
    from cityseg_lib.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo") / "cityscapes", train=6, val=3, test=2,
                             size=(128, 64), seed=0)
