"""A run's life: reuse a finished run, resume or extend an unfinished one, start a new one beside
runs of the same name, or (asked explicitly) retrain, which moves the run it replaces to
``.replaced/`` beside it (:func:`cityseg_lib.files.set_aside`); no code removes a run's files (an
extension moves the shorter run's results to ``RUN/history/``, :mod:`.history`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write_text, set_aside
from cityseg_lib.lock import folder_lock
from cityseg_lib.runstore import identity
from cityseg_lib.runstore.files import load_config, load_summary, read_json, relative
from cityseg_lib.runstore.identity import check_same_computation, find_runs, run_dir
from cityseg_lib.strict import load_yaml


def longer_run(run: str | os.PathLike, done: int, asked: int) -> CitysegError:
    """The error of a run that holds more epochs (finished, or in ``last.pt``) than ``asked``."""
    return CitysegError(f"{run}: this run was trained for {done} epochs, {asked} were asked; "
                        "choose another name, or retrain to replace it")


def check_revision(run: str | os.PathLike, cfg: TrainConfig) -> None:
    """Refuse to load ``run``'s weights into a model whose computation this version changed since
    the run trained (its ``identity.json`` records another ``model_revision``, absent = 1): the
    weights would be scored, exported or predicted with by another function than the one they learnt."""
    from cityseg_lib.runstore.files import load_identity

    saved = load_identity(run).get("computed")
    if not isinstance(saved, dict):  # no identity recorded: nothing to compare with
        return
    before, now = saved.get("model_revision", 1), identity.training_revision(cfg) or 1
    if before != now:
        raise CitysegError(f"{relative(run)}: trained by revision {before} of the {cfg.model} model, and this version "
                           f"builds revision {now} at its size (see cityseg_lib/models): its weights would be used by "
                           "another computation; train it again with this version (a new run beside it, this one is kept)")


def is_finished(run: str | os.PathLike, cfg: TrainConfig) -> bool:
    """True when ``run`` holds a finished run of ``cfg``'s length; an error when it is longer.

    Finished means ``summary.json`` and ``config.yaml`` agree on the length: an extension moves
    ``summary.json`` aside before it rewrites ``config.yaml`` (:mod:`.history`), so a run where they
    disagree was left mid-extension by an older version, and is not reused at its shorter length.
    """
    path = Path(run) / "summary.json"
    if not path.is_file():
        return False
    saved, summary = load_config(run).epochs, read_json(path)
    done = int(summary.get("epochs", saved))
    if done > cfg.epochs:
        raise longer_run(run, done, cfg.epochs)
    if int(summary.get("epochs_run", done)) > done:  # an older version's resume with a smaller epochs
        raise CitysegError(f"{run}: summary.json says {done} epochs but {summary['epochs_run']} were run; "
                           "retrain to replace the run")
    if done != saved and done == cfg.epochs:
        raise CitysegError(f"{run}: an extension of this {done}-epoch run to {saved} epochs was interrupted "
                           f"(summary.json says {done}, config.yaml {saved}); resume it with epochs={saved}, "
                           "or retrain to replace it")
    return done == cfg.epochs == saved


def fit_state(run: Path, cfg: TrainConfig, resume: bool) -> str:
    """What ``fit(cfg, resume)`` does in ``run`` (read under the run's lock, changes nothing):
    ``"finished"`` (return it), ``"extend"`` (a finished shorter run, from its ``last.pt``),
    ``"resume"`` (an unfinished run, from ``last.pt`` when there is one) or ``"new"``.

    Without ``resume`` a folder that holds this run is refused, finished or not, so nothing is
    overwritten by accident. A run whose ``last.pt`` is gone cannot continue (it would silently
    start over): it is refused when it is finished shorter, or has finished epochs.
    """
    last = run / "last.pt"
    held = [n for n in ("config.yaml", "summary.json", "last.pt") if (run / n).is_file()]
    if held and not resume:
        raise CitysegError(f"{run} already holds this run; pass --resume to continue it, or choose another name=")
    if is_finished(run, cfg):
        return "finished"
    if (run / "summary.json").is_file():
        if not last.is_file():
            done = read_json(run / "summary.json").get("epochs")
            raise CitysegError(f"{run}: cannot extend this {done}-epoch run to {cfg.epochs} epochs: its last.pt is "
                               "missing (retrain to replace the run)")
        return "extend"
    if last.is_file():
        return "resume"
    done = _epochs_done(run)
    if done:
        raise CitysegError(f"{run}: cannot resume: its last.pt is missing but metrics.csv records {done} epochs "
                           "(retrain to replace the run)")
    return "new"


def prepare(cfg: TrainConfig, resume: bool, retrain: bool = False, new_ok: bool = False) -> tuple[Path, str]:
    """Where ``cfg`` trains and what to do: ``(folder, "finished" | "resume" | "new")``.

    ``resume`` continues (or extends) the run of the same computation; when only runs of the
    same name that compute something else exist, resuming is refused naming the first differing
    key, unless ``new_ok`` (notebooks: a changed parameter simply starts a new run beside the
    old). ``retrain`` first moves the run of this computation to ``.replaced/`` (and says where).
    """
    from cityseg_lib.models import check_model, check_weights

    # a bad model, option value, or an input size the model cannot take fails here, before a folder
    # or the data is touched (run_dir then refuses a train_subset larger than the split); then a
    # training batch the model cannot take at that size (the split's size counted, nothing read),
    # and initial weights that cannot be had here (a pretrained Swin offline, in no cache)
    size = cfg.crop_size or cfg.image_size
    check_model(cfg.model, cfg.model_options, size)
    check_model(cfg.model, cfg.model_options, size, smallest_batch=identity.smallest_batch(cfg))
    check_weights(cfg.model, cfg.model_options)
    out = run_dir(cfg)
    if retrain and os.environ.get("RANK", "0") != "0":
        # torchrun: rank 0 alone moves the earlier run aside (two ranks moving one folder refused
        # each other's lock, or set aside the folder the other's lock had just re-created); this
        # rank reads the folder in fit, after rank 0 has joined the process group, so after the move
        return out, "new"
    if retrain and out.exists():
        with folder_lock(out):  # refused while another process trains in it
            kept = set_aside(out)
        print(f"{cfg.name}: retrain requested: the earlier run of this config moved to {relative(kept)}")
    if (out / "config.yaml").is_file():
        if is_finished(out, cfg):
            return out, "finished"
        _check_idle(out)
        if not resume:
            raise CitysegError(f"{out} already holds this run ({_progress_text(out, cfg)}); pass --resume "
                               "(resume=True) to continue it")
        return out, "resume"
    if out.is_dir():
        _check_idle(out)  # a process that began this run a moment ago (no config.yaml yet)
    if resume and not new_ok:
        others = find_runs(cfg)
        if others:
            check_same_computation(load_yaml(others[0] / "config.yaml"), cfg, others[0])
            raise CitysegError(f"{others[0]}: cannot resume: that run computes something else "
                               f"({identity_change(others[0], cfg)})")
    return out, "new"


def start_line(run: Path, cfg: TrainConfig, state: str) -> str:
    """What ``cityseg train`` says before it trains ``run`` (``state``: :func:`prepare`'s): that it
    trains it, resumes it after the epochs ``metrics.csv`` holds, or extends the finished run."""
    if state == "resume" and (run / "summary.json").is_file():
        done = read_json(run / "summary.json").get("epochs")
        return f"extending {run} from {done} to {cfg.epochs} epochs"
    done = _epochs_done(run) if state == "resume" else 0
    return f"resuming {run} after epoch {done} of {cfg.epochs}" if done else f"training {run}"


def _check_idle(run: Path) -> None:
    """Refuse, naming it, a process that is training ``run`` now (it holds the run's lock), rather
    than advise ``--resume`` (refused in turn by the lock) or announce a training that will not
    start. Under torchrun every rank prepares at once: rank 0 alone looks (two looks at one
    moment would refuse each other), the other ranks meet the lock, if any, in ``fit``."""
    if os.environ.get("RANK", "0") == "0":
        with folder_lock(run):
            pass


def identity_change(run: Path, cfg: TrainConfig) -> str:
    """What makes ``cfg`` another computation than ``run``, in words, from the identity that run
    recorded (``identity.json``): the computed keys that differ (``model_options.weights``: a key
    of a dict by name; a key that run does not record came with a later version) and the dataset's
    content. An older version's identity of the same keys and data reads as such."""
    try:
        saved = json.loads((run / "identity.json").read_text())
        old, old_data = _flat(saved["computed"]), saved["dataset"]["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {relative(run / 'identity.json')} is missing or unreadable"
    now = _flat(json.loads(json.dumps(identity.computed_config(cfg))))
    earlier = {**identity.ADDED_KEYS, "world_size": 1, "model_revision": 1}  # the value a key absent from an identity stands for
    parts = []
    for key in sorted(set(old) | set(now)):
        before, after = old.get(key, earlier.get(key, _UNSET)), now.get(key, earlier.get(key, _UNSET))
        option = "." in key  # model_options.KEY: an option set on one side only
        if before is _UNSET:
            parts.append(f"{key}={_short(after)}, " + ("unset there" if option else "a key added since that run"))
        elif after is _UNSET:
            parts.append(f"{key}={_short(before)} there, " + ("unset now" if option else "a key this version lacks"))
        elif before != after:
            parts.append(f"{key} {_short(before)} there, {_short(after)} now")
    if old_data != identity.dataset_fingerprint(cfg)["digest"]:
        parts.append("the dataset's content")
    return "; ".join(parts) or "the same keys and data, identified by an older version"


_UNSET = object()


def _flat(computed: dict) -> dict:
    """``model_options`` (a dict key) as ``model_options.KEY`` entries, so a change names its option."""
    out = {k: v for k, v in computed.items() if not isinstance(v, dict)}
    for key, value in computed.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
    return out


def _short(value) -> str:
    """``repr(value)``, a long one (a weights digest) cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:36] + "..." + ("'" if isinstance(value, str) else "")


def earlier_runs_note(cfg: TrainConfig, out: Path) -> str | None:
    """One line for a *new* run ``out`` beside runs of the same name (None when there are none):
    the newest of them and what it computes differently (:func:`identity_change`), kept as it is.
    After an upgrade this is the line that says why a study is trained again."""
    others = [p for p in find_runs(cfg) if p != out]
    if not others:
        return None
    more = f" (and {len(others) - 1} more of this name)" if len(others) > 1 else ""
    return (f"{cfg.name}: a new run {relative(out)}; the earlier run {relative(others[0])}{more} computes something "
            f"else ({identity_change(others[0], cfg)}) and is kept")


def _epochs_done(run: Path) -> int:
    metrics = run / "metrics.csv"
    return max(len(metrics.read_text().splitlines()) - 1, 0) if metrics.is_file() else 0


def _progress_text(run: Path, cfg: TrainConfig) -> str:
    return f"{_epochs_done(run)} of {cfg.epochs} epochs done"


def train_or_load(cfg: TrainConfig, retrain: bool = False, verbose: bool = True, note: bool = True) -> Path:
    """The finished run of ``cfg``: reused when it exists, else trained (or resumed, or extended).

    Returns the run folder. Other runs of the same name are never touched; a new run beside them
    says so first (:func:`earlier_runs_note`; ``note=False``: the caller said it).
    """
    import time

    from cityseg_lib.train.engine import fit

    out, state = prepare(cfg, resume=True, retrain=retrain, new_ok=True)
    if state == "finished":
        _refresh_data_root(out, cfg)
        if verbose:
            print(f"{cfg.name}: reusing the finished run {relative(out)}")
        return out
    if verbose and note and state == "new" and (line := earlier_runs_note(cfg, out)):
        print(line)
    start = _epochs_done(out) if state == "resume" else 0  # an interrupted (or shorter) run goes on
    if verbose and start:
        print(f"{cfg.name}: resuming {relative(out)} after epoch {start} of {cfg.epochs}")
    t0 = time.perf_counter()
    fit(cfg, resume=True)
    if verbose:
        s = load_summary(out)
        which = f" (epochs {start + 1}-{s['epochs_run']})" if start else ""
        n = s["epochs_run"] - start
        print(f"{cfg.name}: trained {n} epoch{'s' if n != 1 else ''}{which} in {time.perf_counter() - t0:.0f} s; "
              f"best epoch {s['best_epoch']}, val mIoU {100 * s['val']['miou']:.1f}%")
    return out


def _refresh_data_root(run: Path, cfg: TrainConfig) -> None:
    """Point a reused run's ``config.yaml`` at the dataset's current place (same content)."""
    from cityseg_lib.paths import resolve_data_root

    saved = load_yaml(run / "config.yaml")
    now = str(resolve_data_root(cfg.data_root))
    if saved.get("data_root") != now:
        saved["data_root"] = now
        with folder_lock(run):
            atomic_write_text(run / "config.yaml", yaml.safe_dump(saved, sort_keys=False))
