"""``cityseg``: the command-line interface.

User errors (:class:`CitysegError`) and file-system errors on inputs and outputs (a missing,
unreadable or read-only path) print one line naming the path and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cityseg_lib.cli_checks import (OneLineParser, check_local_device, check_output_file, check_predict_engine,
                                    inference_mode, nonnegative_int_arg, output_arg, profile_arg, size_arg)
from cityseg_lib.errors import CitysegError

__all__ = ["main"]


def _cmd_make_demo_data(a) -> int:
    from cityseg_lib.data.demo import check_demo_args
    from cityseg_lib.data.source import generate_demo

    args = {"train": a.train, "val": a.val, "test": a.test, "train_extra": a.train_extra, "size": list(a.size),
            "seed": a.seed, "coarse": not a.no_coarse}
    check_demo_args(**args)  # before the stamp of the data there goes
    root = generate_demo(a.out, args, workers=a.workers, progress=not os.environ.get("CI"))
    print(f"wrote synthetic demo dataset to {root}")
    return 0


def _cmd_check_data(a) -> int:
    from cityseg_lib.data.check import check_dataset, format_summary
    from cityseg_lib.files import atomic_write_text, json_safe
    from cityseg_lib.paths import resolve_data_root

    root = resolve_data_root(a.root)
    if a.json:
        check_output_file(a.json, "--json", inputs=(("--root" if a.root else "$CITYSCAPES_DATASET", root),))
    summary = check_dataset(root, fast=a.fast, workers=a.workers)
    print(format_summary(summary))
    if a.json:  # whole or not at all (a kill mid-write leaves the earlier file)
        atomic_write_text(a.json, json.dumps(json_safe(summary), indent=2, allow_nan=False))
    return 0


def _cmd_train(a) -> int:
    from cityseg_lib import runstore
    from cityseg_lib.config import load_config
    from cityseg_lib.execute import get_executor, use_executor

    executor = get_executor(use_executor(a.executor))
    if executor.kind != "local" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise CitysegError(f"--executor {executor.kind} under torchrun: torchrun already starts the processes of "
                           "this run (DDP); use one or the other")
    cfg = load_config(a.params, a.overrides)  # a bad key or value fails here, before the engine's imports
    check_local_device(executor.kind, cfg.device)
    # prepare checks the model name and options (importing the models costs ~3 s, the engine ~5 s more)
    out, state = runstore.prepare(cfg, resume=a.resume, retrain=a.retrain)
    from cityseg_lib.train.distributed import shutdown
    from cityseg_lib.train.engine import fit
    from cityseg_lib.train.resume import adopt_threads

    say = print if os.environ.get("RANK", "0") == "0" else (lambda line: None)  # torchrun: rank 0 speaks
    if state == "finished":
        say(f"{out}: finished already ({cfg.epochs} epochs); --retrain trains it again, a larger epochs= "
            "with --resume extends it")
        return 0
    say(runstore.start_line(out, cfg, state))
    if state == "new" and (line := runstore.earlier_runs_note(cfg, out)):
        say(line)
    if threads := adopt_threads(out, cfg.device) if state == "resume" else None:  # a notebook's run: 1 thread
        say(f"  on {threads} torch thread(s), as it trained (CPU results depend on the count)")
    # prepare has vetted the folder (and moved a retrained run aside) once, here; the job always
    # resumes, so a Ray retry of a worker that died continues from last.pt instead of being refused
    for _ in executor.run(fit, [(out, (cfg, True, print))], threads=threads or 0):  # local: here; ray: a task
        pass
    shutdown()  # under torchrun: every rank leaves the process group before exiting
    s = runstore.load_summary(out)
    full = s.get("val_full_res")
    say(f"run finished: {out}  (best epoch {s['best_epoch']}, val mIoU {100 * s['val']['miou']:.1f}%"
          + (f", full resolution {100 * full['miou']:.1f}%" if full else "") + ")")
    return 0


def _cmd_evaluate(a) -> int:
    from cityseg_lib.evaluate.score import evaluate_run, format_scores

    result = evaluate_run(a.run, split=a.split, full_res=a.full_res, device=a.device, data_root=a.root,
                          mode=inference_mode(a), images=a.images)  # the flags are checked before the run is read
    print(format_scores(result, a.run))
    if result.get("image_seconds"):  # an inference mode times each frame's prediction
        from cityseg_lib.report.cost import median_time_text

        print(f"  time per image: {median_time_text(result['image_seconds'])}")
    return 0


def _cmd_evaluate_folder(a) -> int:
    from cityseg_lib.evaluate.folder import evaluate_folder, format_result, write_json

    if a.out:
        check_output_file(a.out, "--out", make_parents=True, inputs=(("--pred", a.pred), ("--gt", a.gt)))
    result = evaluate_folder(a.pred, a.gt, split=a.split, workers=a.workers)
    print(format_result(result))
    if a.out:
        write_json(result, a.out)
    return 0


def _cmd_predict(a) -> int:
    check_predict_engine(a)
    if a.engine == "onnxruntime":
        from cityseg_lib.evaluate.deploy import predict_images_onnx

        files = predict_images_onnx(a.run, a.onnx, a.input, a.out, fmt=a.format, resume=a.resume)
    else:
        from cityseg_lib.evaluate.predict import predict_images

        files = predict_images(a.run, a.input, a.out, fmt=a.format, device=a.device, mode=inference_mode(a),
                               resume=a.resume)
    print(f"wrote {len(files)} file(s) to {a.out}")
    return 0


def _cmd_export(a) -> int:
    from cityseg_lib.evaluate.deploy import export_run

    info = export_run(a.run, a.out, data_root=a.root, n_check=a.check_frames)
    c = info["check"]
    print(f"wrote {a.out} ({info['size_bytes'] / 2**20:.1f} MiB, opset {info['opset']}): {info['message']}")
    print(f"onnxruntime vs PyTorch on {c['frames']} validation frames: argmax agreement {100 * c['agreement']:.4f}%, "
          f"max |logit difference| {c['max_abs_diff']:.2e}")
    return 0


def _cmd_sweep(a) -> int:
    from cityseg_lib.sweep import load_sweep_config, run_sweep

    from cityseg_lib.execute import use_executor

    executor = use_executor(a.executor) if a.executor else None  # else the params' executor, else $CITYSEG_EXECUTOR
    out = run_sweep(load_sweep_config(a.params, a.overrides), dry_run=a.dry_run, executor=executor)
    if not a.dry_run:
        print(f"sweep finished: {out}")
    return 0


def _cmd_tensorboard(a) -> int:
    from cityseg_lib.paths import runs_dir
    from cityseg_lib.train.tblog import serve

    logdir = Path(a.logdir) if a.logdir else runs_dir() / (a.profile or "")
    return serve(logdir, port=a.port, host=a.host)


def _cmd_report(a) -> int:
    from cityseg_lib.report.arguments import report_from_args

    return report_from_args(a)


def _mode_arguments(s) -> None:
    s.add_argument("--mode", default="whole", choices=["whole", "slide"], help="inference: whole image at the "
                   "training size, or sliding windows of the size it trained on (its crop)")
    s.add_argument("--tta", default=None, help="test-time augmentation: flip, ms (multi-scale) or flip,ms")
    s.add_argument("--scales", default=None, help="with --tta ms: its scales, e.g. 0.75,1.0,1.25")
    s.add_argument("--stride", default=None, help="with --mode slide: stride HxW (default: 2/3 of the window)")


def _executor_argument(s) -> None:
    # a plain string: an unknown name is a one-line CitysegError (exit 2), like every bad input
    s.add_argument("--executor", default=None, metavar="local|ray",
                   help="where training runs: local (this process, default) or ray (one GPU, or cpus_per_run CPUs, "
                        "per run; $RAY_ADDRESS or an embedded cluster); default $CITYSEG_EXECUTOR, else local")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="cityseg", description="Semantic segmentation study on Cityscapes.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("make-demo-data", help="generate the synthetic demo dataset in the official layout")
    s.add_argument("out", type=output_arg, help="output folder (the dataset root)")
    s.add_argument("--train", type=int, default=24)
    s.add_argument("--val", type=int, default=8)
    s.add_argument("--test", type=int, default=4)
    s.add_argument("--train-extra", type=int, default=0, help="coarse-only train_extra frames")
    s.add_argument("--size", type=size_arg, default=(2048, 1024), help="WIDTHxHEIGHT (default 2048x1024)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-coarse", action="store_true", help="skip the gtCoarse annotations")
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    s.set_defaults(func=_cmd_make_demo_data)

    s = sub.add_parser("check-data", help="validate a dataset and print a summary")
    s.add_argument("--root", default=None, help="dataset root (default: $CITYSCAPES_DATASET)")
    s.add_argument("--fast", action="store_true", help="read PNG headers only")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--json", default=None, type=output_arg, help="also write the summary to this JSON file")
    s.set_defaults(func=_cmd_check_data)

    s = sub.add_parser("train", help="train a model: runs/PROFILE/NAME-HASH/ (HASH: what it computes)")
    s.add_argument("--params", action="append", default=None, help="params YAML (keys of TrainConfig); again: "
                   "another file over it (params/demo/train.yaml, then main.yaml: a main run of the demo)")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, values in YAML syntax")
    how = s.add_mutually_exclusive_group()
    how.add_argument("--resume", action="store_true",
                     help="continue this run from RUN/last.pt, or extend it to a larger epochs=")
    how.add_argument("--retrain", action="store_true",
                     help="train this config again; its finished run moves to .replaced/ beside it (kept, not deleted)")
    _executor_argument(s)
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="evaluate a run's best checkpoint")
    s.add_argument("--run", required=True, help="run folder")
    s.add_argument("--split", default="val")
    s.add_argument("--full-res", action="store_true", help="official protocol at the original label size")
    s.add_argument("--root", default=None, help="dataset root, when it moved since training")
    s.add_argument("--device", default="auto")
    s.add_argument("--images", type=nonnegative_int_arg, default=0, metavar="N",
                   help="score only the split's first N frames (default 0: every frame)")
    _mode_arguments(s)
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("evaluate-folder", help="score official-format labelIds predictions")
    s.add_argument("--pred", required=True, help="folder of *CITY_SEQ_FRAME*.png labelIds predictions")
    s.add_argument("--gt", required=True, help="dataset root with gtFine/")
    s.add_argument("--split", default="val")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--out", default=None, type=output_arg, help="write the result JSON here")
    s.set_defaults(func=_cmd_evaluate_folder)

    s = sub.add_parser("predict", help="segment images with a trained run")
    s.add_argument("--run", required=True)
    s.add_argument("--input", required=True, help="an image or a folder of images")
    s.add_argument("--out", required=True, type=output_arg)
    s.add_argument("--format", default="overlay", choices=["overlay", "color", "labelIds"])
    s.add_argument("--device", default="auto")
    s.add_argument("--engine", default="torch", choices=["torch", "onnxruntime"])
    s.add_argument("--onnx", default=None, help="exported model for --engine onnxruntime (default RUN/model.onnx)")
    s.add_argument("--resume", action="store_true", help="keep an interrupted predict's outputs in --out, write the rest")
    _mode_arguments(s)
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("export", help="export a run's best checkpoint to ONNX, checked with onnxruntime")
    s.add_argument("--run", required=True)
    s.add_argument("--out", required=True, type=output_arg, help="the .onnx file to write (never over an existing file)")
    s.add_argument("--root", default=None, help="dataset root for the check frames, when it moved since training")
    s.add_argument("--check-frames", type=int, default=4, help="validation frames compared with PyTorch")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("sweep", help="successive-halving hyperparameter sweep (resumable)")
    s.add_argument("--params", required=True, help="sweep params YAML")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="sweep config overrides")
    s.add_argument("--dry-run", action="store_true", help="print the rung plan and its cost; train nothing")
    _executor_argument(s)
    s.set_defaults(func=_cmd_sweep)

    s = sub.add_parser("tensorboard", help="serve TensorBoard on runs/ (or runs/PROFILE, or a sweep or run folder)")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--profile", default=None, type=profile_arg, help="only the runs of this profile: runs/PROFILE")
    where.add_argument("--logdir", default=None, help="any folder above run folders (a sweep: its trials)")
    s.add_argument("--port", type=int, default=6006, help="0: a free port (default 6006)")
    s.add_argument("--host", default="localhost", help="address to bind (default localhost: this machine only)")
    s.set_defaults(func=_cmd_tensorboard)

    from cityseg_lib.report.arguments import add_report_arguments

    s = sub.add_parser("report", help="run notebooks 01-07 and render reports/PROFILE/report.{html,pdf}")
    add_report_arguments(s)
    s.set_defaults(func=_cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    from cityseg_lib import interrupt

    parser = build_parser()
    args = parser.parse_args(argv)
    interrupt.install()
    try:
        return args.func(args)
    except CitysegError as e:
        print(f"cityseg {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user named: missing, unreadable, read-only, a file for a folder...
        where = e.filename or ""
        print(f"cityseg {args.command}: error: {where}{': ' if where else ''}{e.strerror or e}", file=sys.stderr)
        return 2
    except BaseException as e:  # Ctrl-C, SIGTERM, or what an interrupted write raised after them
        stopped = interrupt.outcome(e)
        if stopped is None:
            raise
        print(f"cityseg {args.command}: {stopped[0]}", file=sys.stderr)
        return stopped[1]


if __name__ == "__main__":
    sys.exit(main())
