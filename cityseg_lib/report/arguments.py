"""The ``cityseg report`` command line: its arguments and ``--set NB.KEY=VALUE`` overrides, handed
to :func:`cityseg_lib.report.build.run_report`."""

from __future__ import annotations

import argparse

from cityseg_lib.errors import CitysegError

__all__ = ["add_report_arguments", "report_from_args"]


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``cityseg report``; pair with :func:`report_from_args`."""
    from cityseg_lib.cli_checks import profile_arg

    parser.add_argument("--profile", default="demo", type=profile_arg, help="params profile: demo (default), full or smoke")
    parser.add_argument("--retrain", action="store_true", help="train every run again instead of reusing finished runs")
    parser.add_argument("--only", nargs="+", default=None, metavar="NB",
                        help="run only these notebooks (e.g. 07 to re-render the report from existing results)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NB.KEY=VALUE",
                        help="override a notebook parameter, e.g. '03.train={epochs: 2}' (value in YAML syntax)")
    parser.add_argument("--no-pdf", dest="pdf", action="store_false", help="write the HTML only")
    parser.add_argument("--executor", default=None, metavar="local|ray",
                        help="where the notebooks' runs train (default $CITYSEG_EXECUTOR, else local); ray: one "
                             "cluster for all, independent notebooks at once")
    return parser


def _parse_sets(items: list[str]) -> dict[str, dict]:
    import yaml

    out: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        nb, dot, name = key.partition(".")
        if not sep or not dot or not nb or not name:
            raise CitysegError(f"--set {item!r} is not NB.KEY=VALUE (e.g. '03.train={{epochs: 2}}')")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise CitysegError(f"--set {item!r}: value is not valid YAML") from None
        out.setdefault(nb, {})[name] = value
    return out


def report_from_args(args: argparse.Namespace) -> int:
    """Run :func:`run_report` from parsed :func:`add_report_arguments` arguments; returns 0."""
    from cityseg_lib.report.build import run_report

    run_report(args.profile, retrain=args.retrain, only=args.only, overrides=_parse_sets(args.overrides), pdf=args.pdf,
               executor=args.executor)
    return 0
