"""A two-node Ray cluster on this machine: the smoke sweep across it, and token authentication.

The cluster runs in a helper process (``ray.cluster_utils.Cluster``: a head and a worker node of
one CPU each, on loopback, ``RAY_AUTH_MODE=token`` with a random token), as ``ray start --head``
and ``ray start --address`` would on two machines (``docs/scale-out.md``). The sweep is driven by
``cityseg sweep --executor ray`` with ``RAY_ADDRESS``, as a user would; its tables must equal the
local executor's. A client without the token, or with another one, is refused.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from cityseg_lib import sweep as S

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "params" / "smoke" / "sweep.yaml"
TIME_COLUMNS = ("train_time_s", "wall_time_s")

# The helper: start the cluster (three tries: on a busy machine a raylet can give up on its agent,
# ray-project/ray#65983), print its address, hold it until stdin closes.
HOLDER = """
import sys, time
from ray.cluster_utils import Cluster
for attempt in range(3):
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        break
    except Exception as err:
        print("retrying:", err, file=sys.stderr, flush=True)
        time.sleep(10)
else:
    sys.exit(1)
print(cluster.address, flush=True)
sys.stdin.read()
cluster.shutdown()
"""


def _env(tmp: Path, **extra) -> dict:
    """A clean environment: no token unless given, HOME without ~/.ray/auth_token, loopback node address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "CITYSEG_EXECUTOR"))}
    env.update(HOME=str(tmp), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", **extra)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(address, token, home) of a token-protected two-node cluster held by a helper process."""
    home = tmp_path_factory.mktemp("ray_home")
    token = secrets.token_hex(16)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=_env(home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token))
    address = holder.stdout.readline().strip()
    if not address:
        holder.kill()
        pytest.fail(f"the two-node cluster did not start: {holder.stderr.read()[-3000:]}")
    yield address, token, home
    holder.stdin.close()  # the helper shuts the cluster down
    try:
        holder.wait(timeout=60)
    except subprocess.TimeoutExpired:
        holder.kill()


def _rows(folder: Path) -> list[dict]:
    with open(folder / "trials.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in csv.DictReader(f)]


def _overrides(demo_root: Path, runs: Path, cache: Path) -> list[str]:
    return [f"base.data_root={demo_root}", f"base.cache_dir={cache}", f"runs_dir={runs}", "devices=[cpu]",
            "cpu_threads=1", "cpus_per_run=1"]


@pytest.mark.slow
def test_the_smoke_sweep_across_two_nodes_gives_the_local_tables(cluster, demo_root, tmp_path):
    address, token, home = cluster
    cache = tmp_path / "cache"
    local = S.run_sweep(S.load_sweep_config(SMOKE, _overrides(demo_root, tmp_path / "local", cache)),
                        log=lambda _: None, executor="local")
    cmd = [sys.executable, "-m", "cityseg_lib.cli", "sweep", "--params", str(SMOKE), "--executor", "ray",
           *_overrides(demo_root, tmp_path / "cluster", cache)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=_env(home, RAY_ADDRESS=address, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trials ran on 2 node(s)" in done.stdout, done.stdout[-2000:]
    (remote,) = (tmp_path / "cluster" / "smoke").glob("sweep_smoke-*")
    assert remote.name == local.name  # the same sweep (its id ignores where it ran)
    assert _rows(remote) == _rows(local)
    assert (remote / "table2.csv").read_text() == (local / "table2.csv").read_text()
    wr, wl = (json.loads((f / "winner.json").read_text()) for f in (remote, local))
    assert wr["winner"] == wl["winner"] and wr["runner_up"] == wl["runner_up"]


@pytest.mark.slow
@pytest.mark.parametrize("client, says", [
    ({"RAY_AUTH_MODE": "token"}, "no authentication token was found"),  # refused before it connects
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"}, "Failed to connect"),  # refused by the cluster
    ({}, ""),  # a client that does not know about tokens: refused by the cluster
], ids=["no-token", "wrong-token", "auth-off-client"])
def test_a_client_without_the_token_is_refused(cluster, tmp_path, client, says):
    """The positive control is the sweep above (the same cluster, the right token)."""
    address, _, _ = cluster
    code = ("from cityseg_lib.execute.ray_executor import connect\n"
            "try:\n    connect()\n    print('CONNECTED')\n"
            "except Exception as e:\n    print(type(e).__name__, '|', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=_env(tmp_path, RAY_ADDRESS=address, **client))
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-2000:]
    assert lines[-1].startswith(f"CitysegError | executor ray: cannot join the cluster at RAY_ADDRESS={address}: ")
    assert says in lines[-1]
