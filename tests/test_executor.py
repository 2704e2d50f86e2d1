"""Executors: the one setting, local and Ray runs alike, faults (a killed worker, a user error), loopback."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from cityseg_lib import runstore
from cityseg_lib.cli import main as cli_main
from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.execute import Executor, LocalExecutor, executor_name, get_executor, train_all
from cityseg_lib.execute.study import train_one
from cityseg_lib.lock import lock_holder
from cityseg_lib.strict import from_dict
from cityseg_lib.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
TIME_COLUMNS = ("epoch_time_s", "train_images_per_s")


def _cfg(demo_root: Path, runs: Path, name: str = "tiny", **values) -> TrainConfig:
    """A run of a second or less on CPU (a tiny U-Net at 32x64)."""
    base = {"name": name, "profile": "smoke", "runs_dir": str(runs), "data_root": str(demo_root), "model": "unet",
            "model_options": {"base_width": 4, "depth": 2}, "image_size": [32, 64], "batch_size": 2, "epochs": 2,
            "step_size": 1, "gamma": 0.5, "lr": 0.01, "device": "cpu", "num_workers": 0, "full_res_eval": False,
            "progress": False}
    return from_dict(TrainConfig, {**base, **values}, source="test")


def _assert_same_run(a: Path, b: Path) -> None:
    """Same metrics (times aside) and bit-identical weights in best.pt and last.pt."""
    ma, mb = runstore.load_metrics(a), runstore.load_metrics(b)
    cols = [c for c in ma.columns if c not in TIME_COLUMNS]
    assert ma[cols].equals(mb[cols])
    for name in ("best.pt", "last.pt"):
        wa, wb = load_checkpoint(a / name)["model"], load_checkpoint(b / name)["model"]
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
    assert runstore.load_summary(a)["best_val_loss"] == runstore.load_summary(b)["best_val_loss"]


# ----------------------------------------------------------------------------- the setting (no Ray)


def test_an_unknown_executor_is_one_line_wherever_it_is_set(monkeypatch, tmp_path, capsys):
    with pytest.raises(CitysegError, match=r"^--executor=spark: unknown executor \(valid: local, ray\)$"):
        executor_name("spark")
    monkeypatch.setenv("CITYSEG_EXECUTOR", "spark")
    with pytest.raises(CitysegError, match=r"^CITYSEG_EXECUTOR=spark: unknown executor"):
        get_executor()
    monkeypatch.setenv("CITYSEG_EXECUTOR", "Ray")
    assert executor_name() == "ray" and executor_name("local") == "local"
    monkeypatch.delenv("CITYSEG_EXECUTOR")
    assert get_executor().kind == "local"  # the default: nothing imports Ray

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("executor: spark\n")
    from cityseg_lib.sweep import load_sweep_config

    with pytest.raises(CitysegError, match=f"{sweep}: executor=spark: unknown executor"):
        load_sweep_config(sweep)
    for argv in (["sweep", "--params", str(ROOT / "params/smoke/sweep.yaml"), "--executor", "spark", "--dry-run"],
                 ["train", "--executor", "spark", "epochs=1"]):
        assert cli_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("--executor=spark: unknown executor (valid: local, ray)") and "\n" not in err


@pytest.mark.parametrize("address", ["garbage", "10.0.0.1", "host:99999", "http://head:6379"])
def test_a_bad_ray_address_is_one_line_before_any_output_or_folder(monkeypatch, tmp_path, capsys, demo_root, address):
    monkeypatch.setenv("RAY_ADDRESS", address)
    monkeypatch.setenv("CITYSEG_EXECUTOR", "local")  # --executor ray sets it: restored after the test
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path / "home"))  # the report's data and outputs
    runs = tmp_path / "runs"
    smoke = ROOT / "params/smoke/sweep.yaml"
    for argv in (["train", "--executor", "ray", f"runs_dir={runs}", f"data_root={demo_root}", "epochs=1"],
                 ["sweep", "--params", str(smoke), "--executor", "ray", f"runs_dir={runs}",
                  f"base.data_root={demo_root}"],
                 ["sweep", "--params", str(smoke), "--executor", "ray", "--dry-run", f"base.data_root={demo_root}"],
                 ["report", "--profile", "smoke", "--executor", "ray", "--only", "01", "--no-pdf"]):
        assert cli_main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and f"RAY_ADDRESS={address!r}" in err, (argv, out, err)
    assert not runs.exists() and not (tmp_path / "home").exists()
    for good in ("auto", "10.0.0.1:6379", "[::1]:6379", "ray://head", "ray://head:10001"):
        monkeypatch.setenv("RAY_ADDRESS", good)
        assert get_executor("ray").kind == "ray"  # nothing connects until the first job


def test_a_dead_ray_node_is_one_line_that_says_the_command_resumes(monkeypatch, capsys):
    """A raylet that dies (killed, out of memory, or with an agent it fate-shares with: a chaos kill of
    ``ray::RuntimeEnvAgent`` during ``cityseg sweep --executor ray``) took the whole node: no retry can
    run. It was Ray's traceback and exit 1; now one line naming the job and the way on, exit 2."""
    ray = pytest.importorskip("ray")
    from cityseg_lib.execute.ray_executor import RayExecutor

    class DeadNode:
        exceptions = ray.exceptions

        @staticmethod
        def get(ref):
            raise ray.exceptions.LocalRayletDiedError()

    with pytest.raises(CitysegError, match=r"^job \(0, 3\): the Ray node died \(The task's local raylet died\..*\); "
                                           r"run the same command again to resume$"):
        RayExecutor._get(DeadNode, object(), (0, 3))

    def sweep_on_a_dead_node(cfg, dry_run=False, log=print, executor=None):
        RayExecutor._get(DeadNode, object(), (0, 3))

    monkeypatch.setattr("cityseg_lib.sweep.run_sweep", sweep_on_a_dead_node)
    assert cli_main(["sweep", "--params", str(ROOT / "params/smoke/sweep.yaml"), "base.data_root=/nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "run the same command again" in err


def test_local_executor_gives_every_job_the_thread_count(monkeypatch):
    before = torch.get_num_threads()
    seen = list(LocalExecutor().run(lambda x: (x, torch.get_num_threads()), [(k, (k,)) for k in "abc"], threads=1))
    assert seen == [(k, (k, 1)) for k in "abc"] and torch.get_num_threads() == before


def test_train_all_locally_keeps_order_trains_a_run_once_and_reuses_it(demo_root, tmp_path, capsys, monkeypatch):
    a, b = _cfg(demo_root, tmp_path, "a"), _cfg(demo_root, tmp_path, "b", lr=0.003)
    runs = train_all([b, a, b], executor="local")
    assert runs == [runstore.run_dir(b), runstore.run_dir(a), runstore.run_dir(b)]
    assert all((r / "summary.json").is_file() for r in runs)
    assert capsys.readouterr().out.count("b: trained 2 epochs") == 1
    monkeypatch.setattr("cityseg_lib.train.engine.fit", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setenv("CITYSEG_EXECUTOR", "ray")  # finished runs never start the executor
    assert train_all([a, b]) == runs[1:]
    assert "a: reusing the finished run" in capsys.readouterr().out


def _open_files() -> set[str]:
    """What this process's descriptors point at (Linux: ``/proc/self/fd``)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the descriptor listdir itself used, closed since
            pass
    return out


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="descriptors are listed via /proc")
def test_runs_in_one_process_leave_nothing_behind(demo_root, tmp_path, monkeypatch, capsys):
    """The local executor trains every run and sweep trial in the calling process (a notebook's kernel,
    ``cityseg sweep``): a finished or failed run leaves no DataLoader worker, no open file (event file,
    lock, checkpoint), no thread and no live model or dataset, so dozens of runs use what one does."""
    import gc
    import multiprocessing
    import weakref

    from cityseg_lib.train import engine

    made = []
    for name in ("build_model_for", "build_datasets"):
        def spy(*args, _real=getattr(engine, name), **kwargs):
            out = _real(*args, **kwargs)
            made.extend(weakref.ref(o) for o in (out if isinstance(out, tuple) else (out,)))
            return out
        monkeypatch.setattr(engine, name, spy)

    def state():
        gc.collect()
        return _open_files(), {t.name for t in threading.enumerate()}, multiprocessing.active_children()

    train_all([_cfg(demo_root, tmp_path, "warm", num_workers=1, epochs=1)], executor="local")  # imports, lazy singletons
    files, threads, _ = state()
    for i in range(3):
        train_all([_cfg(demo_root, tmp_path, f"run{i}", num_workers=1, seed=i, epochs=1, max_batches=1)], executor="local")
    with pytest.raises(CitysegError, match="non-finite"):  # a failed run too (a sweep records it and goes on)
        train_all([_cfg(demo_root, tmp_path, "diverges", num_workers=1, lr=1e30, epochs=1)], executor="local")
    now_files, now_threads, children = state()
    assert children == [] and now_threads == threads
    assert now_files == files, f"left open: {sorted(now_files - files)}"
    assert len(made) == 3 * 5 and [r for r in made if r() is not None] == [], "a run's model or dataset is still alive"


class _WorkerDied(BaseException):
    """The worker process is gone: nothing after this point of the job ran."""


class _Retrying(Executor):
    """Ray's ``max_retries`` without Ray: a job whose worker died runs again, with its own arguments."""

    kind = "retrying"

    def run(self, fn, jobs, threads=0):
        for key, args in jobs:
            try:
                result = fn(*args)
            except _WorkerDied:
                result = fn(*args)
            yield key, result


def _worker_dies_after_epoch_1(monkeypatch) -> None:
    real, died = runstore.write_metrics, []

    def write_metrics(run, history):
        real(run, history)
        if not died:
            died.append(1)
            raise _WorkerDied

    monkeypatch.setattr(runstore, "write_metrics", write_metrics)


def test_a_retried_cli_training_resumes_from_last_pt(demo_root, tmp_path, monkeypatch, capsys):
    reference = train_all([_cfg(demo_root, tmp_path / "local")], executor="local")[0]
    monkeypatch.setattr("cityseg_lib.execute.get_executor", lambda *a, **k: _Retrying())
    _worker_dies_after_epoch_1(monkeypatch)
    args = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in {
        "name": "tiny", "profile": "smoke", "runs_dir": str(tmp_path / "cli"), "data_root": str(demo_root),
        "model": "unet", "model_options": {"base_width": 4, "depth": 2}, "image_size": [32, 64], "batch_size": 2,
        "epochs": 2, "step_size": 1, "gamma": 0.5, "lr": 0.01, "device": "cpu", "num_workers": 0,
        "full_res_eval": False, "progress": False}.items()]
    assert cli_main(["train", *args]) == 0, capsys.readouterr().err
    (run,) = (tmp_path / "cli" / "smoke").glob("tiny-*")
    assert list(runstore.load_metrics(run)["epoch"]) == [1, 2]  # epoch 1 once: the retry resumed
    _assert_same_run(run, reference)


def test_a_retried_retrain_moves_the_run_aside_once_and_resumes(demo_root, tmp_path, monkeypatch, capsys):
    cfg = _cfg(demo_root, tmp_path)
    (run,) = train_all([cfg], executor="local")
    kept = tmp_path / "kept"
    shutil.copytree(run, kept)
    _worker_dies_after_epoch_1(monkeypatch)
    assert train_all([cfg], executor=_Retrying(), retrain=True) == [run]
    assert len(list((run.parent / ".replaced").iterdir())) == 1  # the finished run, moved once
    assert list(runstore.load_metrics(run)["epoch"]) == [1, 2]
    _assert_same_run(run, kept)


def test_what_the_gpu_check_imports_needs_no_ray_onnx_or_papermill(demo_root, tmp_path):
    """A GPU machine without Ray, ONNX or papermill: the package, the engine, the sweep and the
    benchmarks' imports load, and a local run trains (tests the imports are lazy)."""
    blocked = tmp_path / "blocked"
    for name in ("ray", "onnx", "onnxruntime", "onnxscript", "papermill", "nbformat"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    code = (
        "import sys; from pathlib import Path\n"
        "import cityseg_lib.cli, cityseg_lib.execute, cityseg_lib.sweep, cityseg_lib.train.engine\n"
        "import cityseg_lib.data.demo\n"
        "sys.path.insert(0, 'benchmarks'); import common, bench_train, gpu\n"
        "from cityseg_lib.execute import train_all; from cityseg_lib.config import TrainConfig\n"
        "from cityseg_lib.strict import from_dict\n"
        f"cfg = from_dict(TrainConfig, dict(name='x', profile='smoke', runs_dir={str(tmp_path)!r}, "
        f"data_root={str(demo_root)!r}, model='unet', model_options={{'base_width': 4, 'depth': 2}}, "
        "image_size=[32, 64], "
        "batch_size=2, epochs=1, device='cpu', num_workers=0, full_res_eval=False, progress=False), source='t')\n"
        "print(train_all([cfg])[0].name); assert 'ray' not in sys.modules or sys.modules['ray'] is None\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("x-")


# ----------------------------------------------------------------------------- Ray (an embedded cluster)


@pytest.fixture(scope="module")
def ray_local():
    """One embedded cluster of 2 CPUs for this module; the environment it sets is restored after."""
    saved = dict(os.environ)
    from cityseg_lib.execute import ray_executor

    address = ray_executor.connect(num_cpus=2)
    yield address
    import ray

    ray.shutdown()
    os.environ.clear()
    os.environ.update(saved)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _listening_addresses(pids: list[int]) -> list[tuple[str, int]]:
    """(address, port) of the TCP sockets these processes listen on (/proc, no extra tools)."""
    inodes = set()
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addr, port = fields[1].split(":")
                raw = bytes.fromhex(addr)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # per-word little endian
                found.append((socket.inet_ntop(family, raw), int(port, 16)))
    return found


def test_the_embedded_cluster_listens_on_loopback_only_without_dashboard_and_with_a_token(ray_local, tmp_path):
    assert ray_local.startswith("127.0.0.1:")
    assert os.environ["RAY_AUTH_MODE"] == "token"
    procs = _descendants(os.getpid())
    cmdlines = [Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                for p in procs if Path(f"/proc/{p}/cmdline").exists()]
    assert any("raylet" in c for c in cmdlines)
    # Ray keeps a headless API process; include_dashboard=False leaves it without the web front end
    heads = [c for c in cmdlines if "dashboard/dashboard.py" in c]
    assert all("--disable-frontend" in c and "--modules-to-load=UsageStatsHead" in c for c in heads), heads
    listening = _listening_addresses(procs)
    assert listening and all(a in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for a, _ in listening), listening
    assert 8265 not in {port for _, port in listening}  # the dashboard's port
    # a client without the token is refused (HOME elsewhere: no ~/.ray/auth_token either)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_TOKEN")}
    env["HOME"] = str(tmp_path)
    code = (f"import ray\ntry:\n    ray.init(address={ray_local!r})\n"
            "except Exception as e:\n    print('REFUSED', type(e).__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert "REFUSED AuthenticationError" in done.stdout, done.stdout + done.stderr[-2000:]


def test_an_embedded_cluster_starts_after_import_ray_and_again_after_the_environment_was_restored(tmp_path):
    """Ray reads RAY_AUTH_MODE at import and caches the first token it loads for the life of the
    process, while the GCS it starts reads the environment as it is then. A notebook that ran
    ``import ray`` first, or a second embedded cluster after ``ray.shutdown()`` in an environment that
    lost the first token (a test module after another's fixture restored ``os.environ``: how two Ray
    modules in one pytest-xdist worker failed), had the GCS refuse its own driver ("Failed to start
    GCS" after 20 s)."""
    code = ("import os\nsaved = dict(os.environ)\nimport ray\nfrom cityseg_lib.execute import ray_executor\n"
            "first = ray_executor.connect(num_cpus=1)\nray.shutdown()\nos.environ.clear()\nos.environ.update(saved)\n"
            "second = ray_executor.connect(num_cpus=1)\nprint('STARTED', first != second, os.environ['RAY_AUTH_MODE'])\n"
            "ray.shutdown()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and "STARTED True token" in done.stdout, done.stdout + done.stderr[-2000:]


def test_train_all_on_ray_equals_local_and_runs_in_workers(ray_local, demo_root, tmp_path, capsys):
    cfgs = lambda runs: [_cfg(demo_root, runs, "a"), _cfg(demo_root, runs, "b", lr=0.003, loss="dice")]  # noqa: E731
    local = train_all(cfgs(tmp_path / "local"), executor="local", threads=1)
    capsys.readouterr()
    ray_runs = train_all(cfgs(tmp_path / "ray"), executor=get_executor("ray", cpus_per_run=1), threads=1)
    out = capsys.readouterr().out
    assert "a: trained 2 epochs" in out and "b: trained 2 epochs" in out  # the workers' lines, unprefixed
    for a, b in zip(local, ray_runs):
        _assert_same_run(a, b)
        assert lock_holder(b)["pid"] not in (os.getpid(), None)  # trained in a Ray worker


def _count_then_fail(path: str) -> None:
    with open(path, "a") as f:
        f.write("attempt\n")
    raise CitysegError("bad value (a user error, not retried)")


def _fill_the_disk(path: str) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _die_on_first_attempt(path: str) -> int:
    marker = Path(path)
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return int(marker.read_text())


def test_a_user_error_is_not_retried_and_a_dead_worker_is(ray_local, tmp_path):
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    ex = get_executor("ray", cpus_per_run=1)
    attempts = tmp_path / "attempts.txt"
    with pytest.raises(CitysegError, match=r"^bad value \(a user error, not retried\)$"):
        list(ex.run(_count_then_fail, [("x", (str(attempts),))], threads=1))
    assert attempts.read_text().count("attempt") == 1
    ((key, first_pid),) = ex.run(_die_on_first_attempt, [("y", (str(tmp_path / "pid"),))], threads=1)
    assert key == "y" and first_pid != os.getpid()  # the second attempt, in a new worker, returned
    # a full disk in a worker: its OSError naming the file, which the CLI prints as one line (not
    # Ray's traceback of the task, in colour, as the error's text)
    with pytest.raises(OSError) as caught:
        list(ex.run(_fill_the_disk, [("z", (str(tmp_path / "last.pt"),))], threads=1))
    assert caught.value.filename == str(tmp_path / "last.pt") and caught.value.errno == errno.ENOSPC
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_a_run_whose_worker_is_killed_mid_epoch_resumes_bit_identical(ray_local, demo_root, tmp_path):
    slow = dict(model_options={"base_width": 32, "depth": 3}, image_size=[64, 128], epochs=3)  # ~2 s per epoch
    reference = train_all([_cfg(demo_root, tmp_path / "local", **slow)], executor="local", threads=1)[0]
    cfg = _cfg(demo_root, tmp_path / "ray", **slow)
    run, killed = runstore.run_dir(cfg), {}
    ex = get_executor("ray", cpus_per_run=1)
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(r=list(ex.run(train_one, [(1, (cfg, False, True))], 1))))
    worker.start()
    deadline = time.monotonic() + 300
    while worker.is_alive() and time.monotonic() < deadline and not killed:
        metrics = run / "metrics.csv"
        if metrics.is_file() and len(metrics.read_text().splitlines()) == 2 and not (run / "summary.json").exists():
            killed["pid"] = lock_holder(run)["pid"]  # epoch 1 done, epoch 2 under way in this worker
            os.kill(killed["pid"], signal.SIGKILL)
        time.sleep(0.02)
    worker.join(timeout=300)
    assert killed and "r" in outcome, "the run finished before it could be killed, or never finished"
    assert lock_holder(run)["pid"] != killed["pid"]  # the retry trained in another worker: the lock was free
    assert list(runstore.load_metrics(run)["epoch"]) == [1, 2, 3]  # resumed from last.pt: every epoch once
    _assert_same_run(run, reference)


def test_the_cli_trains_on_the_executor_it_is_given(ray_local, demo_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CITYSEG_EXECUTOR", "local")  # the CLI sets it from --executor: restored after the test
    args = [f"{k}={v}" for k, v in {"name": "cli", "profile": "smoke", "runs_dir": tmp_path, "data_root": demo_root,
                                   "model_options": "{base_width: 4, depth: 2}", "image_size": "[32, 64]",
                                   "batch_size": 2, "epochs": 1, "device": "cpu", "num_workers": 0,
                                   "full_res_eval": "false", "progress": "false"}.items()]
    assert cli_main(["train", "--executor", "ray", *args]) == 0
    (run,) = (tmp_path / "smoke").glob("cli-*")
    assert "run finished" in capsys.readouterr().out and lock_holder(run)["pid"] != os.getpid()


def test_each_notebook_starts_as_soon_as_the_notebooks_it_reads_have_ended():
    """05 reads 03 and 06 reads 03 and 04: they start when those end, not when the last of 02-04
    does (a build of 2026-12-05 left a core idle for ~40 s while 02's last SimpleFCN run trained
    alone); 01 and 07 run alone, and without room for two (local) one after another, as before."""
    from cityseg_lib.execute.notebooks import in_dependency_order, ready
    from cityseg_lib.report.build import NOTEBOOKS

    nb = dict(zip(["01", "02", "03", "04", "05", "06", "07"], NOTEBOOKS))
    assert ready(nb["05"], NOTEBOOKS, {nb["01"], nb["03"]}, parallel=True)  # 02 and 04 still running
    assert not ready(nb["06"], NOTEBOOKS, {nb["01"], nb["03"]}, parallel=True)  # 04 not yet
    assert not ready(nb["02"], NOTEBOOKS, set(), parallel=True)  # 01 first
    assert not ready(nb["07"], NOTEBOOKS, set(NOTEBOOKS[:5]), parallel=True)  # 07 after all of them
    assert not ready(nb["03"], NOTEBOOKS, {nb["01"]}, parallel=False)  # local: one after another
    assert ready(nb["05"], [nb["05"], nb["06"]], set(), parallel=True)  # 03 not in this build: its result is read

    seconds = {"02": 0.8, "03": 0.2, "04": 0.3}
    events, threads = [], {}

    def job(stem):
        threads[stem[:2]] = threading.current_thread() is threading.main_thread()
        events.append(("start", stem[:2], time.monotonic()))
        time.sleep(seconds.get(stem[:2], 0.05))
        events.append(("end", stem[:2], time.monotonic()))
        return stem[:2]

    started = []
    order = [key[:2] for key, _ in in_dependency_order(NOTEBOOKS, job, True, started=lambda s: started.append(s[:2]))]
    at = {(kind, key): t for kind, key, t in events}
    assert sorted(order) == sorted(nb) and order[0] == "01" and order[-1] == "07" and started[0] == "01"
    assert max(at["start", k] for k in ("02", "03", "04")) < min(at["end", k] for k in ("02", "03", "04"))
    assert at["end", "03"] <= at["start", "05"] < at["end", "02"]  # 05 beside 02's last run
    assert at["end", "04"] <= at["start", "06"] < at["end", "02"]
    assert at["start", "07"] >= max(t for (kind, _), t in at.items() if kind == "end" and _ != "07")
    assert threads["01"] and threads["07"] and not threads["02"]  # alone in this thread, side by side in others

    events.clear()
    assert [k[:2] for k, _ in in_dependency_order(NOTEBOOKS, job, False)] == list(nb)  # local: study order
    assert all(events[2 * i][0] == "start" and events[2 * i + 1] == ("end", events[2 * i][1], events[2 * i + 1][2])
               for i in range(len(nb)))  # each ended before the next began

    def boom(stem):
        if stem[:2] == "03":
            raise CitysegError("notebook 03 failed")
        time.sleep(0.2 if stem[:2] in ("02", "04") else 0)
        return stem[:2]

    done = []
    with pytest.raises(CitysegError, match="notebook 03 failed"):
        for key, _ in in_dependency_order(NOTEBOOKS, boom, True):
            done.append(key[:2])
    assert sorted(done) == ["01", "02", "04"]  # the others ran to their end; 05-07 never began


def test_ctrl_c_while_notebooks_run_side_by_side_stops_them_instead_of_waiting_for_their_end():
    """``cityseg report --executor ray`` runs 02-04 (then 05-06) in threads; their kernels run in sessions
    of their own, so a Ctrl-C or SIGTERM of the build never reaches them. The build waited for the
    whole wave to end (a chaos SIGTERM at 31 s of a smoke build: exit 143 at 77 s). Now the interrupt
    calls ``stop`` (the build's: kill its kernels) and is raised as soon as the threads end."""
    from cityseg_lib.execute.notebooks import in_dependency_order

    stopped = threading.Event()

    def notebook(stem):
        stopped.wait(60)  # a long notebook, until its kernel is stopped
        raise CitysegError("notebook could not run: the kernel died")

    # Python's own Ctrl-C handler, as `cityseg report` runs with it: pytest-xdist's workers ignore SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C, as the terminal sends it
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            list(in_dependency_order(["02_baseline_fcn", "03_unet"], notebook, True, stop=stopped.set))
        assert stopped.is_set() and time.monotonic() - t0 < 10
    finally:
        signal.signal(signal.SIGINT, previous)


def test_stop_kernels_kills_the_running_kernels_of_this_process(monkeypatch):
    import asyncio
    import logging

    from cityseg_lib.report.build import KERNEL
    from cityseg_lib.report.kernel import kernel_manager_class, stop_kernels

    monkeypatch.setattr(logging.getLogger("papermill"), "level", logging.getLogger("papermill").level)  # restored after
    km = kernel_manager_class()(kernel_name=KERNEL)
    asyncio.run(km.start_kernel())
    proc = km.provisioner.process
    try:
        assert proc.poll() is None
        stop_kernels()
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        asyncio.run(km.cleanup_resources())


@pytest.mark.slow
def test_the_gpu_check_runs_reduced_on_cpu_without_ray_onnx_or_papermill(tmp_path):
    """benchmarks/gpu_check.sh in its CPU mode (tiny sizes), with Ray, ONNX, papermill and nbformat
    unimportable as on the GPU machine: every step ends well, within its limit, and writes its table and
    JSON; the ddp step trains through fit's DDP path in its one-rank group (gloo here, NCCL on a GPU)."""
    import re

    blocked = tmp_path / "blocked"
    for name in ("ray", "onnx", "onnxruntime", "onnxscript", "papermill", "nbformat"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    env = {**os.environ, "GPU_CHECK_REDUCED": "1", "PYTHON": sys.executable, "PYTHONPATH": str(blocked),
           "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = (out / "summary.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in summary] == ["data", "fit", "ddp", "bench_train", "gpu", "fullres"]
    assert all(": exit 0 in" in line for line in summary)
    took = [re.search(r"exit 0 in (\d+) s of (\d+) ->", line).groups() for line in summary]
    assert all(int(seconds) <= int(limit) for seconds, limit in took), summary
    assert "gloo, 1 rank" in summary[2] and "x fp32 eager" in summary[3] and "img/s" in summary[4]
    fit = json.loads((out / "fit.json").read_text())
    assert "full-res mIoU %" in (out / "fit.txt").read_text() and list(fit) == ["simple_fcn", "unet", "swin2_jnet"]
    assert all(0 <= r["val_miou_full_res"] <= 1 for r in fit.values())
    ddp = json.loads((out / "ddp.json").read_text())
    assert ddp["error"] is None and ddp["backend"] == "gloo" and ddp["world_size"] == 1 and ddp["epochs_run"] == 1
    assert ddp["ddp_wrapped"] == 1 and ddp["all_reduce_calls"] >= 2 and 0 <= ddp["val_miou"] <= 1
    train = json.loads((out / "train.json").read_text())
    assert train["status"]["finished"] and set(train["results"]["simple_fcn"]["variants"]) == {
        "fp32 eager", "bf16 + channels_last"}
    gpu = json.loads((out / "gpu.json").read_text())
    assert gpu["status"] == {"finished": True, "done": ["simple_fcn"], "pending": []}
    assert gpu["results"]["models"]["simple_fcn"]["eval_compiled"] is False
    assert "32 GPUs" in (out / "gpu.txt").read_text() and "notebooks read as JSON" in (out / "gpu.txt").read_text()
    fullres = json.loads((out / "fullres.json").read_text())["results"]
    assert fullres["ratio"] > 0 and fullres["differing_pixels"] == 0 and fullres["pixels"] == 2 * 64 * 128


def test_a_report_whose_embedded_cluster_does_not_start_trains_locally(monkeypatch):
    """`make report` asks for Ray; an embedded cluster that fails to start (a busy machine) is one
    line and the local executor, not a failed build; a named cluster ($RAY_ADDRESS) stays an error."""
    from cityseg_lib.errors import CitysegError
    from cityseg_lib.execute import ray_executor
    from cityseg_lib.execute.notebooks import shared_cluster

    def refuse(self, threads=0):
        raise CitysegError("executor ray: the embedded cluster did not start (see /tmp/ray/session_latest/logs)")

    monkeypatch.setattr(ray_executor.RayExecutor, "capacity", refuse)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("CITYSEG_EXECUTOR", "ray")
    lines = []
    with shared_cluster("ray", lines.append) as room:
        assert room is False and os.environ["CITYSEG_EXECUTOR"] == "local"
    assert os.environ["CITYSEG_EXECUTOR"] == "ray"
    assert len(lines) == 1 and "did not start" in lines[0] and "local executor instead" in lines[0]
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    with pytest.raises(CitysegError, match="did not start"):
        with shared_cluster("ray", lines.append):
            pass


def test_a_ray_job_carries_absolute_paths_and_its_run_folder_is_unchanged(demo_root, tmp_path, monkeypatch):
    """A Ray worker resolves a relative path against its own directory (the one `ray start` ran in):
    a job's TrainConfig and the forwarded variables leave the driver absolute (the run's identity
    holds no path, so its folder is the same)."""
    from cityseg_lib.execute.ray_executor import _absolute, forwarded_env

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(demo_root, target_is_directory=True)
    cfg = _cfg(Path("data"), Path("runs"), cache_dir="cache")
    (sent, flag), = [_absolute((cfg, True))]
    assert (sent.data_root, sent.runs_dir, sent.cache_dir) == (str(demo_root.resolve()), str(tmp_path / "runs"),
                                                               str(tmp_path / "cache"))
    assert flag is True and runstore.run_dir(sent) == runstore.run_dir(cfg)
    # a Swin weights file too: it enters the run's identity by its content, so the folder is the same
    (tmp_path / "w.pth").write_bytes(b"weights")
    swin = _cfg(Path("data"), Path("runs"), model="swin2_jnet", image_size=[48, 96],
                model_options={"pretrained": True, "weights": "w.pth"})
    (sent, _), = [_absolute((swin, True))]
    assert sent.model_options["weights"] == str(tmp_path / "w.pth") and runstore.run_dir(sent) == runstore.run_dir(swin)
    monkeypatch.setenv("CITYSCAPES_DATASET", "data")
    monkeypatch.setenv("CITYSEG_EXECUTOR", "ray")
    env = forwarded_env()
    assert env["CITYSCAPES_DATASET"] == str(demo_root.resolve()) and env["CITYSEG_EXECUTOR"] == "local"


def test_a_ray_address_where_nothing_listens_is_one_line_at_once(monkeypatch):
    """ray.init retried such an address for minutes (a warning every ~35 s)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    code = ("import time\nfrom cityseg_lib.execute.ray_executor import connect\nt = time.perf_counter()\n"
            "try:\n    connect()\nexcept Exception as e:\n    print(round(time.perf_counter() - t), '|', e)\n")
    # in a process of its own: one of this file's tests may have joined a cluster already (kept)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"})
    seconds, _, message = done.stdout.strip().rpartition("\n")[2].partition(" | ")
    assert message.startswith(f"executor ray: cannot join the cluster at RAY_ADDRESS=127.0.0.1:{port}: nothing "
                              f"answers at 127.0.0.1:{port}"), done.stdout + done.stderr[-2000:]
    assert int(seconds) < 5


def test_cli_resume_on_ray_takes_the_runs_thread_count_too(demo_root, tmp_path, monkeypatch, one_torch_thread):
    """`cityseg train --resume --executor ray` of a 1-thread run from a shell: the job gets 1 thread."""
    import cityseg_lib.execute as execute
    from cityseg_lib.train.engine import fit

    fit(_cfg(demo_root, tmp_path, epochs=1))
    seen = []

    class Recording(LocalExecutor):
        kind = "ray"

        def run(self, fn, jobs, threads=0):
            seen.append(threads)
            return super().run(fn, jobs, threads)

    monkeypatch.setattr(execute, "get_executor", lambda *a, **k: Recording())
    monkeypatch.setenv("CITYSEG_EXECUTOR", "local")  # --executor ray sets it: restored after the test
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    args = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in
            {"name": "tiny", "profile": "smoke", "runs_dir": str(tmp_path), "data_root": str(demo_root),
             "model": "unet", "model_options": {"base_width": 4, "depth": 2}, "image_size": [32, 64], "batch_size": 2,
             "epochs": 2, "step_size": 1, "gamma": 0.5, "lr": 0.01, "device": "cpu", "num_workers": 0,
             "full_res_eval": False, "progress": False}.items()]
    assert cli_main(["train", *args, "--resume", "--executor", "ray"]) == 0
    assert seen == [1]
