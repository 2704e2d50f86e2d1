"""Run under ``torchrun --nproc-per-node 2`` by ``tests/test_engine.py``: rank 1's loss turns NaN in
the epoch's last step while rank 0's stays finite. Each rank prints what ``train_one_epoch`` raised.

Not a test module (pytest collects ``test_*.py`` only): a worker script, because the two ranks
must be separate processes in one gloo group."""

import sys

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from cityseg_lib.errors import CitysegError
from cityseg_lib.train import distributed as D
from cityseg_lib.train.loop import train_one_epoch

cpu = torch.device("cpu")
D.init_distributed(cpu)
torch.manual_seed(0)
model = DistributedDataParallel(nn.Conv2d(3, 4, 1))
steps = {"n": 0}


def criterion(logits, masks):
    steps["n"] += 1
    loss = nn.functional.cross_entropy(logits, masks)
    return loss * float("nan") if D.rank() == 1 and steps["n"] == 2 else loss


batches = [(torch.randn(2, 3, 4, 4), torch.randint(0, 4, (2, 4, 4)), None) for _ in range(2)]
try:
    train_one_epoch(model, criterion, torch.optim.SGD(model.parameters(), lr=0.1), batches, cpu)
    print(f"rank {D.rank()}: finished", flush=True)
    code = 0
except CitysegError as e:
    print(f"rank {D.rank()}: CitysegError: {e}", flush=True)
    code = 3
if code == 0:
    D.shutdown()
sys.exit(code)
