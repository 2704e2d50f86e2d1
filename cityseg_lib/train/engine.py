"""``fit(cfg)``: training as one straight line, into the run folder the run store names.

``fit`` builds data, model, optimiser (AdamW by default; Adam, Adamax) and scheduler (StepLR),
then per epoch trains, evaluates on the validation split, keeps the lowest-validation-loss
weights in ``best.pt`` (early stopping, Section 3.4 of the reference report) and writes
``last.pt`` atomically so a run killed at any moment resumes from where it was (``resume=True``;
bit-identical on CPU, see :mod:`cityseg_lib.train.resume` and ``docs/scale-out.md`` for CUDA),
and a finished run asked for more epochs continues from its ``last.pt``. The run folder is
locked while it trains (a second process on it is refused). Files are written through
:mod:`cityseg_lib.runstore`, which owns their names and formats.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from contextlib import nullcontext
from torch import nn
from torch.utils.data import DataLoader

from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.strict import config_to_dict
from cityseg_lib.data.dataset import CityscapesSegmentation
from cityseg_lib.data.labels import NUM_CLASSES
from cityseg_lib.errors import CitysegError
from cityseg_lib.lock import folder_lock
from cityseg_lib.models import build_model, model_options
from cityseg_lib.paths import default_cache_dir, resolve_data_root
from cityseg_lib.train import distributed as D
from cityseg_lib.train import resume as R
from cityseg_lib.train import tblog
from cityseg_lib.train.checkpoint import load_checkpoint, save_checkpoint
from cityseg_lib.train.losses import build_loss
from cityseg_lib.train.optimizers import OPTIMIZERS, build_optimizer
from cityseg_lib.train.loop import evaluate, evaluate_full_res, to_device, train_one_epoch, write_above_bars
from cityseg_lib.train.setup import (configure_cuda, num_workers, peak_memory_mb, precision, progress_enabled,
                                     reset_peak_memory, resolve_device, seed_all, seed_epoch)

__all__ = ["OPTIMIZERS", "build_datasets", "full_val_dataset", "build_model_for", "build_optimizer", "fit", "load_run",
           "resolve_device", "to_device", "train_one_epoch", "evaluate", "evaluate_full_res"]


def _cache_dir(cfg: TrainConfig) -> Path | None:
    return (Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()) if cfg.cache else None


def build_datasets(cfg: TrainConfig) -> tuple[CityscapesSegmentation, CityscapesSegmentation]:
    """Training (subset, augmentation, crops) and validation datasets at ``cfg.image_size``; the
    validation set is the per-epoch one (``max_val_images``), see :func:`full_val_dataset`."""
    root = resolve_data_root(cfg.data_root)
    cache = _cache_dir(cfg)
    train = CityscapesSegmentation(
        root, cfg.train_split, cfg.image_size, cfg.annotation, augment=cfg.augment, hflip_p=cfg.hflip_p,
        crop_scale=cfg.crop_scale, crop_size=cfg.crop_size, crop_class_balance=cfg.crop_class_balance,
        subset=cfg.train_subset, subset_seed=cfg.subset_seed, cache_dir=cache, normalize=False,
        mask_resize=cfg.mask_resize,
    )
    val = CityscapesSegmentation(
        root, cfg.val_split, cfg.image_size, "fine",
        subset=cfg.max_val_images or None, subset_seed=0, cache_dir=cache, normalize=False,
        mask_resize=cfg.mask_resize,
    )
    return train, val


def full_val_dataset(cfg: TrainConfig, val: CityscapesSegmentation) -> CityscapesSegmentation:
    """The whole validation split at ``cfg.image_size``, for the final full-resolution evaluation
    (the official protocol scores every validation frame): ``val`` itself, or the whole split when
    ``max_val_images`` made ``val`` a per-epoch subset."""
    if not cfg.max_val_images:
        return val
    return CityscapesSegmentation(val.root, val.split, val.size, "fine", cache_dir=_cache_dir(cfg), normalize=False,
                                  mask_resize=cfg.mask_resize)


def build_model_for(cfg: TrainConfig, init_weights: bool = True) -> nn.Module:
    """The model of ``cfg``. A model that fixes its input size at creation says so with an
    ``img_size`` option (Swin V2), which gets ``cfg.image_size``.

    ``init_weights=False`` skips loading pretrained encoder weights (download or file), for when a
    checkpoint is about to overwrite them anyway (resume, evaluation, prediction).
    """
    options, valid = dict(cfg.model_options), model_options(cfg.model)
    if "img_size" in valid:
        options.setdefault("img_size", tuple(cfg.image_size))
    if not init_weights:
        options.update({k: v for k, v in (("pretrained", False), ("weights", None)) if k in valid})
    return build_model(cfg.model, num_classes=NUM_CLASSES, **options)


# ----------------------------------------------------------------------------- fit


def _loaders(cfg: TrainConfig, train_ds, val_ds, workers: int, use_cuda: bool, distributed: bool):
    gen = torch.Generator()
    if distributed:
        sampler = torch.utils.data.DistributedSampler(train_ds, shuffle=True, seed=cfg.seed, drop_last=True)
    else:
        sampler = torch.utils.data.RandomSampler(train_ds, generator=gen)
    kw = dict(num_workers=workers, pin_memory=use_cuda, persistent_workers=False)
    # the last, partial batch is dropped when this process has more than a batch of images (its DDP
    # share, not the whole set: 6 images on 2 processes at batch 4 gave each 3 images and no batch)
    train = DataLoader(train_ds, cfg.batch_size, sampler=sampler, drop_last=len(sampler) > cfg.batch_size,
                       generator=gen, **kw)
    val = DataLoader(val_ds, cfg.batch_size, sampler=D.ShardSampler(len(val_ds)), **kw)
    return train, val, sampler, gen


def fit(cfg: TrainConfig, resume: bool = False, log=None) -> Path:
    """Train ``cfg`` into ``runstore.run_dir(cfg)``; returns the run folder.

    Writes ``config.yaml``, ``identity.json``, ``environment.json``, ``metrics.csv`` (a row per
    epoch), ``last.pt`` (every epoch), ``best.pt`` (lowest val loss) and, at the end,
    ``summary.json`` and the per-image confusion matrices of the kept checkpoint; TensorBoard
    event files in ``RUN/tb/`` (:mod:`cityseg_lib.train.tblog`). ``summary.json``'s ``wall_time_s`` and
    ``peak_memory_mb`` are the run's, over every process that trained it (:func:`.resume.carried`), its
    ``precision`` the one it trained with (:func:`.setup.precision`; kept on resume: :func:`.resume.recorded_cpu_bf16`).
    ``resume=True`` continues from ``last.pt`` (or starts when there is none), and extends a
    finished run when ``cfg.epochs`` is larger; without it, a folder that holds this run is an
    error, so nothing is overwritten by accident (:func:`runstore.fit_state`, read under the
    folder's lock, which is held while training).
    ``log(line)`` (e.g. ``print``) gets one line per epoch and the final scores, on the main rank.
    """
    device = resolve_device(cfg.device)
    distributed = D.init_distributed(device)
    out = runstore.run_dir(cfg)
    with folder_lock(out) if D.is_main() else nullcontext():
        state = runstore.fit_state(out, cfg, resume)
        D.barrier()  # every rank has read the folder before rank 0 changes anything in it
        if state != "finished":
            with tblog.RunLog(out) as tb:
                _fit(cfg, out, device, distributed, state != "new", log if D.is_main() else None, tb)
    D.barrier()
    return out


def _fit(cfg: TrainConfig, out: Path, device: torch.device, distributed: bool, resume: bool, log,
         tb: tblog.RunLog) -> None:
    configure_cuda(device)
    memory_scope = reset_peak_memory(device)
    last_path, best_path = runstore.checkpoint_path(out, "last"), runstore.checkpoint_path(out, "best")
    progress = progress_enabled(cfg.progress)
    use_cuda = device.type == "cuda"
    resuming = resume and last_path.is_file()
    saved = R.load_last(last_path) if resuming else None  # a resumed CPU run keeps the precision it began with
    amp, channels_last = precision(cfg, device, R.recorded_cpu_bf16(saved))
    kept = resuming and not use_cuda and amp != precision(cfg, device)[0]

    # data
    train_ds, val_ds = build_datasets(cfg)
    workers = num_workers(cfg.num_workers, device)
    train_loader, val_loader, train_sampler, gen = _loaders(cfg, train_ds, val_ds, workers, use_cuda, distributed)

    # model, loss, optimiser, scheduler
    seed_all(cfg.seed)
    model = build_model_for(cfg, init_weights=not resuming).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if distributed and use_cuda:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    criterion = build_loss(cfg.loss)
    optimizer = build_optimizer(cfg, model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)

    start_epoch, best_loss, best_epoch, bad_epochs, history = 0, math.inf, -1, 0, []
    wall_before, peak_before = 0.0, 0.0  # what the earlier processes of this run measured
    run_env = R.execution(workers, device, cpu_bf16=amp)
    if resuming:  # refused here, before anything in the folder changed, when it cannot continue as asked
        saved = R.restore(last_path, cfg, model, optimizer, scheduler, run_env, state=saved)
        start_epoch, best_loss, best_epoch = saved["epoch"], saved["best_val_loss"], saved["best_epoch"]
        bad_epochs, history, (wall_before, peak_before) = saved["bad_epochs"], saved["history"], R.carried(saved)
    raw_model = model
    if distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if use_cuda else None)
    if cfg.compile:
        model = torch.compile(model)

    if D.is_main():
        runstore.remove_partial_checkpoints(out)  # what a kill mid-write left (no result, a model's size)
        runstore.mark_unfinished(out)  # an extension: the shorter run's results to RUN/history/ first
        runstore.write_run_info(out, cfg)
        if resuming:  # what a kill between last.pt and the files after it left out
            R.repair_best(best_path, saved, cfg)
            runstore.write_metrics(out, history)
        tb.start(history, raw_model, val_ds, device, cfg.epochs, amp=amp)  # rank 0 only; the epochs not logged yet
        if kept and (say := log if log is not None else write_above_bars if progress else None):
            say(f"{cfg.name}: continues in {'bf16 autocast' if amp else 'float32'} as it began "
                f"(cpu_bf16={cfg.cpu_bf16}; this CPU {'lacks' if amp else 'has'} AMX)")
    D.barrier()
    t_run = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.patience and bad_epochs >= cfg.patience:
            break
        # seed everything from (seed, epoch, rank): a resumed epoch repeats exactly
        seed_all(seed_epoch(cfg.seed, epoch))
        gen.manual_seed(seed_epoch(cfg.seed, epoch))
        train_ds.set_epoch(cfg.seed, epoch)  # augmentation: a generator per (seed, epoch, sample), any workers
        if distributed:
            train_sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        tr = train_one_epoch(model, criterion, optimizer, train_loader, device, amp=amp, channels_last=channels_last,
                             max_batches=cfg.max_batches, progress=progress,
                             desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}")
        if distributed:  # rank 0's BatchNorm statistics on every rank; no collective inside evaluation's forwards
            D.broadcast_buffers(raw_model)
        val_loss, scores, _ = evaluate(raw_model if distributed else model, criterion, val_loader, device, amp=amp,
                                       channels_last=channels_last, progress=progress)
        if not math.isfinite(val_loss):
            raise CitysegError(f"non-finite validation loss at epoch {epoch + 1}; last good checkpoint: {last_path}")
        scheduler.step()
        is_best = val_loss < best_loss
        if is_best:
            best_loss, best_epoch, bad_epochs = val_loss, epoch + 1, 0
        else:
            bad_epochs += 1
        history.append({
            "epoch": epoch + 1, "lr": lr, "train_loss": tr["loss"], "val_loss": val_loss, "val_miou": scores.miou,
            "val_pixel_accuracy": scores.pixel_accuracy, "epoch_time_s": round(tr["seconds"], 3),
            "train_images_per_s": round(tr["images"] / max(tr["seconds"], 1e-9), 3), "is_best": int(is_best),
        })
        # checkpoint (rank 0 only; last before best, both atomic: best.pt never holds an attempt last.pt lacks)
        if D.is_main():
            weights = raw_model.state_dict()
            save_checkpoint(last_path, {
                "model": weights, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1, "best_val_loss": best_loss, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                "history": history, "rng": {"torch": torch.get_rng_state()}, "config": config_to_dict(cfg),
                "execution": run_env, "wall_time_s": wall_before + time.perf_counter() - t_run,
                "peak_memory_mb": max(peak_before, peak_memory_mb(device)),
            })
            if is_best:
                save_checkpoint(best_path, R.best_state(weights, epoch + 1, val_loss, cfg))
            runstore.write_metrics(out, history)
            tb.epoch(history[-1], raw_model, val_ds, device, cfg.epochs, amp=amp)
            line = (f"epoch {epoch + 1}/{cfg.epochs}: train loss {tr['loss']:.4f}  val loss {val_loss:.4f}  "
                    f"val mIoU {100 * scores.miou:.1f}%  lr {lr:.3g}  {tr['seconds']:.1f} s" + ("  (best)" if is_best else ""))
            if log is not None:
                log(line)
            elif progress:
                write_above_bars(line)
        D.barrier()

    # final evaluation of the best checkpoint, at the training size and at full resolution
    raw_model.load_state_dict(R.check_best(best_path, best_epoch, device)["model"])
    val_loss, scores, confmat, val_ids, val_matrices = evaluate(raw_model, criterion, val_loader, device, amp=amp,
                                                                channels_last=channels_last, progress=progress,
                                                                per_image=True)
    full = None
    if cfg.full_res_eval:
        full, full_cm, ids, per_image = evaluate_full_res(raw_model, full_val_dataset(cfg, val_ds), device, batch_size=cfg.batch_size,
                                                          num_workers=workers, amp=amp, channels_last=channels_last,
                                                          progress=progress)
    if D.is_main():
        runstore.write_per_image(out, val_ids, val_matrices, full_res=False)
        if full is not None:
            runstore.write_per_image(out, ids, per_image, full_res=True)
        if log is not None:
            log(f"best epoch {best_epoch}: val loss {best_loss:.4f}, val mIoU {100 * scores.miou:.1f}% at "
                f"{tuple(cfg.image_size)}" + (f", {100 * full.miou:.1f}% at full resolution" if full else ""))
        tb.final(len(history), best_epoch, best_loss, scores, full, raw_model, val_ds, device, amp=amp)
        rates = [h["train_images_per_s"] for h in history]
        runstore.write_summary(out, {
            "name": cfg.name, "profile": cfg.profile, "model": cfg.model, "loss": cfg.loss, "epochs": cfg.epochs,
            "epochs_run": len(history), "best_epoch": best_epoch, "best_val_loss": best_loss,
            "val": scores.to_dict(), "val_full_res": full.to_dict() if full is not None else None,
            "confusion_matrix": confmat.mat.cpu().tolist(),
            "confusion_matrix_full_res": full_cm.mat.cpu().tolist() if full is not None else None,
            "train_images": len(train_ds), "val_images": len(val_ds),
            "train_images_per_s": float(np.median(rates)) if rates else math.nan,
            "train_time_s": float(sum(h["epoch_time_s"] for h in history)), "wall_time_s": wall_before + time.perf_counter() - t_run,
            "peak_memory_mb": max(peak_before, peak_memory_mb(device)), "peak_memory_scope": memory_scope, "device": str(device),
            "world_size": D.world_size(), "precision": "bf16" if amp else "float32", "channels_last": channels_last,
        })


def load_run(run_dir: str | os.PathLike, checkpoint: str = "best", device: str = "cpu",
             data_root: str | os.PathLike | None = None) -> tuple[TrainConfig, nn.Module]:
    """The config and model (weights of checkpoint ``best`` or ``last``) of a run, in eval mode.

    ``data_root`` replaces the dataset location stored in the run (``--root``).
    """
    cfg = runstore.load_config(run_dir, data_root=data_root)
    runstore.check_revision(runstore.resolve(run_dir), cfg)  # weights of an earlier model revision
    path = runstore.checkpoint_path(runstore.resolve(run_dir), checkpoint.removesuffix(".pt"))
    state = load_checkpoint(path, map_location=device)
    model = build_model_for(cfg, init_weights=False)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as e:
        raise CitysegError(f"{path}: incompatible checkpoint ({str(e).splitlines()[0]})") from None
    return cfg, model.to(device).eval()
