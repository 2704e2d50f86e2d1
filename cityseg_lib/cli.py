"""``cityseg``: the command-line interface.

User errors (:class:`CitysegError`) print one line and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import CitysegError

__all__ = ["main"]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 2048x1024") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return w, h


def _cmd_make_demo_data(a) -> int:
    from .demo import make_demo_dataset

    root = make_demo_dataset(a.out, train=a.train, val=a.val, test=a.test, train_extra=a.train_extra, size=a.size,
                             seed=a.seed, coarse=not a.no_coarse, workers=a.workers, progress=not os.environ.get("CI"))
    print(f"wrote synthetic demo dataset to {root}")
    return 0


def _cmd_check_data(a) -> int:
    from .check import check_dataset, format_summary
    from .paths import resolve_data_root

    summary = check_dataset(resolve_data_root(a.root), fast=a.fast, workers=a.workers)
    print(format_summary(summary))
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2))
    return 0


def _cmd_train(a) -> int:
    from .config import load_config
    from .engine import fit

    cfg = load_config(a.params, a.overrides)
    out = fit(cfg, resume=a.resume)
    print(f"run finished: {out}")
    return 0


def _cmd_evaluate(a) -> int:
    from .inference import evaluate_run

    result = evaluate_run(a.run, split=a.split, full_res=a.full_res, device=a.device)
    print(f"{a.run} on {a.split} ({'full resolution' if a.full_res else 'training size'}):")
    for name, iou in result["class_iou"].items():  # NaN: the class is in neither labels nor predictions
        print(f"  {name:<15} {100 * iou:6.2f}" if iou == iou else f"  {name:<15} {'absent':>6}")
    print(f"  {'mIoU':<15} {100 * result['miou']:6.2f}   (mean over classes present)   pixel acc {100 * result['pixel_accuracy']:.2f}")
    return 0


def _cmd_evaluate_folder(a) -> int:
    from .evaluate_folder import evaluate_folder, format_result, write_json

    result = evaluate_folder(a.pred, a.gt, split=a.split, workers=a.workers)
    print(format_result(result))
    if a.out:
        write_json(result, a.out)
    return 0


def _cmd_predict(a) -> int:
    from .inference import predict_images

    files = predict_images(a.run, a.input, a.out, fmt=a.format, device=a.device)
    print(f"wrote {len(files)} file(s) to {a.out}")
    return 0


def _cmd_sweep(a) -> int:
    from .sweep import load_sweep_config, run_sweep

    out = run_sweep(load_sweep_config(a.params, a.overrides), dry_run=a.dry_run)
    if not a.dry_run:
        print(f"sweep finished: {out}")
    return 0


def _cmd_report(a) -> int:
    from .report_runner import report_from_args

    return report_from_args(a)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cityseg", description="Semantic segmentation study on Cityscapes.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("make-demo-data", help="generate the synthetic demo dataset in the official layout")
    s.add_argument("out", help="output folder (the dataset root)")
    s.add_argument("--train", type=int, default=24)
    s.add_argument("--val", type=int, default=8)
    s.add_argument("--test", type=int, default=4)
    s.add_argument("--train-extra", type=int, default=0, help="coarse-only train_extra frames")
    s.add_argument("--size", type=_size, default=(2048, 1024), help="WIDTHxHEIGHT (default 2048x1024)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-coarse", action="store_true", help="skip the gtCoarse annotations")
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    s.set_defaults(func=_cmd_make_demo_data)

    s = sub.add_parser("check-data", help="validate a dataset and print a summary")
    s.add_argument("--root", default=None, help="dataset root (default: $CITYSCAPES_DATASET)")
    s.add_argument("--fast", action="store_true", help="read PNG headers only")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--json", default=None, help="also write the summary to this JSON file")
    s.set_defaults(func=_cmd_check_data)

    s = sub.add_parser("train", help="train a model: runs/PROFILE/NAME/")
    s.add_argument("--params", default=None, help="params YAML (keys of TrainConfig)")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, values in YAML syntax")
    s.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="evaluate a run's best checkpoint")
    s.add_argument("--run", required=True, help="run folder")
    s.add_argument("--split", default="val")
    s.add_argument("--full-res", action="store_true", help="official protocol at the original label size")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("evaluate-folder", help="score official-format labelIds predictions")
    s.add_argument("--pred", required=True, help="folder of *CITY_SEQ_FRAME*.png labelIds predictions")
    s.add_argument("--gt", required=True, help="dataset root with gtFine/")
    s.add_argument("--split", default="val")
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--out", default=None, help="write the result JSON here")
    s.set_defaults(func=_cmd_evaluate_folder)

    s = sub.add_parser("predict", help="segment images with a trained run")
    s.add_argument("--run", required=True)
    s.add_argument("--input", required=True, help="an image or a folder of images")
    s.add_argument("--out", required=True)
    s.add_argument("--format", default="overlay", choices=["overlay", "color", "labelIds"])
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("sweep", help="successive-halving hyperparameter sweep (resumable)")
    s.add_argument("--params", required=True, help="sweep params YAML")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="sweep config overrides")
    s.add_argument("--dry-run", action="store_true", help="print the rung plan and its cost; train nothing")
    s.set_defaults(func=_cmd_sweep)

    from .report_runner import add_report_arguments

    s = sub.add_parser("report", help="run notebooks 01-07 and render reports/PROFILE/report.{html,pdf}")
    add_report_arguments(s)
    s.set_defaults(func=_cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CitysegError as e:
        print(f"cityseg {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cityseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
