"""Run under ``torchrun --nproc-per-node 2`` by ``tests/test_engine.py``: rank 1's loss turns NaN in
the epoch's last step while rank 0's stays finite. Each rank writes what ``train_one_epoch`` raised
to ``FOLDER/rank{R}.txt`` (``ddp_one_rank_nan.py FOLDER``; the ranks' prints would interleave).

Not a test module (pytest collects ``test_*.py`` only): a worker script, because the two ranks
must be separate processes in one gloo group."""

import sys
from pathlib import Path

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
    said = "finished"
except CitysegError as e:
    said = f"CitysegError: {e}"
Path(sys.argv[1], f"rank{D.rank()}.txt").write_text(said)
# both ranks leave the group together and exit 0: a rank exiting non-zero first would have torchrun
# SIGTERM the other one while it still exits
D.shutdown()
sys.exit(0)
