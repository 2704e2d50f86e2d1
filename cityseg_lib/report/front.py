"""The report's front and back matter: title, introduction, provenance and notebook timings."""

from __future__ import annotations

import math

import pandas as pd

from cityseg_lib.report.context import ReportContext, devices, trained_on
from cityseg_lib.report.format import join, size_hw


# ----------------------------------------------------------------------------- title, introduction


def title_block(ctx: ReportContext) -> str:
    data = "synthetic demo data (procedurally drawn street scenes, not Cityscapes)" if ctx.synthetic \
        else f"Cityscapes at `{ctx.data_root_shown}`"
    lines = [
        "# Semantic segmentation of street scenes: SimpleFCN, U-Net and Swin2-JNet",
        f"**Profile:** `{ctx.profile}` &nbsp;·&nbsp; **Data:** {data} &nbsp;·&nbsp; **Device:** "
        f"{trained_on(ctx)} &nbsp;·&nbsp; **Built:** {ctx.built}",
    ]
    if ctx.synthetic:
        from cityseg_lib.report.discussion import not_learnt

        slow = not_learnt(ctx)
        learns = ("and that the models learn (each beats twice the constant-prediction floor)" if not slow else
                  f"but {join(slow)} {'is' if len(slow) == 1 else 'are'} not shown to learn past twice the "
                  "constant-prediction floor")
        lines.append(
            '<div class="banner"><b>Synthetic data.</b> Every number in this report was measured on the '
            "generated demo dataset, with the small models and short schedules of the "
            f"<code>{ctx.profile}</code> profile. It shows that the whole study runs {learns}; "
            "it says nothing about accuracy on the real Cityscapes (the <code>full</code> profile measures that).</div>"
        )
    return "\n\n".join(lines)


def notebook_runs(ctx: ReportContext) -> dict[str, list[str]]:
    """``{"02": [run, ...], ..., "06": [...]}``: the complete runs each training notebook hands the
    report (sweep trials not included); a run two notebooks share (the loss comparison's
    cross-entropy seeds are the U-Net's seeds) is listed under the first."""
    groups = {
        "02": [ctx.baseline.main_run, *ctx.baseline.seed_runs],
        "03": [ctx.unet.main_run, *ctx.unet.seed_runs, *ctx.unet.ablation_runs, ctx.unet.constant_lr_run, *ctx.unet.augment_runs.values(),
               *ctx.unet.optimizer_runs.values(), ctx.unet.resolution_run],
        "04": [ctx.swin.main_run, *ctx.swin.seed_runs, *ctx.swin.ablation_runs, ctx.swin.no_dropout_run, ctx.swin.no_batchnorm_run],
        "05": [r for rs in ctx.losses.runs.values() for r in rs],
        "06": list(ctx.sweep.tuned_runs.values()),
    }
    seen: set[str] = set()
    out = {}
    for nb, runs in groups.items():
        out[nb] = [r for r in dict.fromkeys(runs) if r and r not in seen]
        seen.update(out[nb])
    return out


def all_runs(ctx: ReportContext) -> list[str]:
    """Every complete training run the notebooks wrote (sweep trials not included)."""
    return sorted(r for runs in notebook_runs(ctx).values() for r in runs)


def _trial_seconds(ctx: ReportContext) -> float | None:
    """Training seconds of every sweep trial (notebook 06's results record them); None if unrecorded."""
    times = [sw.get("trial_train_s") for sw in ctx.sweep.sweeps.values()]
    return None if not times or any(t is None for t in times) else float(sum(times))


def _train_seconds(ctx: ReportContext, runs: list[str]) -> float:
    return sum(ctx.runs.summary(r).get("train_time_s") or 0 for r in runs)


def introduction(ctx: ReportContext) -> str:
    runs = all_runs(ctx)
    trials = sum(int(s.get("trials", 0)) for s in ctx.sweep.sweeps.values())
    size = ctx.main["SimpleFCN"]["image_size"]
    return (
        f"This build of the study is the `{ctx.profile}` profile. It trained {len(runs)} complete runs "
        f"(plus {trials} shorter sweep trials) for {_train_seconds(ctx, runs) / 60:.1f} minutes of training in total, "
        + (f"at an input size of {size_hw(size)}, " if not ctx.two_recipes else "")
        + "and every figure and table below is computed from the files those runs wrote. "
        + (recipes_text(ctx) + " " if ctx.two_recipes else "")
        + "Sections 2 to 4 follow the reference study's structure (data, architectures, training method); "
        "Section 5 fills in the results the reference left empty, and Sections 6 and 7 draw conclusions "
        "from them. Every headline score carries a 95% bootstrap interval over the validation images, and a "
        "difference between two settings counts as a finding only when its paired interval excludes zero. The "
        "provenance block at the end records the code version, packages, hardware and the time each notebook took."
    )


def recipes_text(ctx: ReportContext) -> str:
    """The two recipes of a profile whose main runs train longer than its ablations (``params/PROFILE/main.yaml``),
    each from its runs' configs, and what each is compared with."""
    main, ref = ctx.runs.config(ctx.unet.main_run), ctx.runs.config(ctx.reference("U-Net"))
    seeds = len(ctx.seed_runs("U-Net"))

    def recipe(cfg, run) -> str:
        frames = ctx.record(run).get("train_images")
        return (f"{cfg.epochs} epochs at {size_hw(cfg.image_size)}" + (f" on {frames} training frames" if frames else ""))

    differ = {k: (main.model_options.get(k), v) for k, v in ref.model_options.items()
              if main.model_options.get(k) != v}
    differ.update({k: (v, ref.model_options.get(k)) for k, v in main.model_options.items() if k not in ref.model_options})
    unet = ("" if not differ else " The U-Net of the ablations is smaller than the main one ("
            + ", ".join(f"{k.replace('_', ' ')} {b} instead of {a}" for k, (a, b) in differ.items()) + ").")
    return (f"It trains with two recipes. The main runs (each architecture with {seeds} seed{'s' if seeds != 1 else ''}: "
            f"the headline numbers and the architecture comparison) train {recipe(main, ctx.unet.main_run)}. Every other "
            f"experiment (losses, optimisers, training size, augmentation, schedule, regularisation, sweeps and tuned "
            f"models) trains with a shorter ablation recipe, {recipe(ref, ctx.reference('U-Net'))}, and is compared "
            "only with its architecture trained with that recipe and the same seeds, never with a main run: the "
            f"shorter recipe is what lets this profile run every experiment within its time budget.{unet}")


# ----------------------------------------------------------------------------- provenance


def dataset_description(ctx: ReportContext) -> str:
    """One line on the data: synthetic (with the generator's settings when known) or Cityscapes."""
    if not ctx.synthetic:
        return f"Cityscapes at {ctx.data_root_shown}"
    gen = ctx.data.generator
    if gen:
        size = "x".join(str(v) for v in gen.get("size", []))
        return (f"SYNTHETIC demo data (cityseg make-demo-data, {gen.get('train', '?')} train / {gen.get('val', '?')} "
                f"val frames at {size}, seed {gen.get('seed', '?')}) at {ctx.data_root_shown}")
    frames = {s: i["images"] for s, i in ctx.data.splits.items()}
    counts = ", ".join(f"{n} {s}" for s, n in frames.items())
    return f"SYNTHETIC demo data (made by cityseg make-demo-data; {counts} frames) at {ctx.data_root_shown}"


def provenance_table(ctx: ReportContext) -> pd.DataFrame:
    env = ctx.env
    runs = all_runs(ctx)
    threads = ctx.baseline.cpu_threads
    cpu = devices(ctx).startswith("CPU")
    rows = [
        ("profile", ctx.profile),
        ("dataset", dataset_description(ctx)),
        ("device", f"the headline runs trained on {trained_on(ctx)}"
                   + (f", {threads} torch CPU thread(s) per run" if threads and cpu else "")
                   + f"; this report was built on {env.get('device')}, {env.get('cpu_count')} cores"),
        ("platform", env.get("platform")),
        ("commit", f"{env.get('commit')} (this report); {runs_commits(ctx)}"),
        ("versions", f"python {env.get('python')}, torch {env.get('torch')}, torchvision {env.get('torchvision')}, "
                     f"timm {env.get('timm')}, numpy {env.get('numpy')}"),
        ("runs", f"{len(runs)} run folders under runs/{ctx.profile}/, {_train_seconds(ctx, runs) / 60:.1f} min of "
                 "training in total"),
        ("headline numbers", f"reports/{ctx.profile}/headline.json (the numbers of Tables 10 and 13, with intervals)"),
        ("built", ctx.built),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def runs_commits(ctx: ReportContext) -> str:
    """The commits the runs were trained at (each run's ``environment.json``), against the report's:
    a rebuild reuses finished runs, which may come from an earlier commit."""
    here = ctx.env.get("commit")
    found: dict[str, int] = {}
    for run in all_runs(ctx):
        commit = ctx.record(run).get("commit") or "not recorded"
        found[commit] = found.get(commit, 0) + 1
    n = sum(found.values())
    if list(found) == [here]:
        return f"all {n} runs trained at this commit"
    if len(found) == 1:
        return f"all {n} runs trained at {next(iter(found))} (reused: this report was built at a later commit)"
    parts = [f"{k} at {c}" for c, k in sorted(found.items(), key=lambda x: -x[1])]
    return f"the {n} runs were trained at more than one commit: {'; '.join(parts)}"


def _training_minutes(ctx: ReportContext) -> dict[str, float]:
    """``{"02": minutes, ...}``: training time of the runs each notebook uses, from their summaries
    (and, for 06, of its sweep trials when recorded), whenever those runs were trained."""
    out = {nb: _train_seconds(ctx, runs) / 60 for nb, runs in notebook_runs(ctx).items()}
    trials = _trial_seconds(ctx)
    if trials is not None:
        out["06"] += trials / 60
    return out


def timings_table(ctx: ReportContext) -> pd.DataFrame:
    """Wall time of each step in the latest execution, and the training its runs cost when trained
    (a rebuild that reuses every run executes a notebook in seconds; the runs' cost stays visible)."""
    t = ctx.timings
    train = _training_minutes(ctx)
    column = "training of its runs (min)"
    rows = []
    if "data_s" in t:
        rows.append({"step": "demo data generation / check", "wall time (s)": t["data_s"], column: math.nan,
                     "finished": ""})
    for nb, info in t.get("notebooks", {}).items():
        if nb.startswith("07"):
            continue
        rows.append({"step": f"{nb}.ipynb", "wall time (s)": info["seconds"], column: train.get(nb[:2], math.nan),
                     "finished": info.get("finished", "")})
    rows.append({"step": "07_report.ipynb (this notebook)", "wall time (s)": math.nan, column: math.nan,
                 "finished": "running now"})
    return pd.DataFrame(rows)


def timings_note(ctx: ReportContext) -> str:
    t = ctx.timings
    if not t.get("notebooks"):
        return ("No timings recorded: this notebook was run directly, not through `cityseg report`, which times "
                "each notebook.")
    done = {k: v for k, v in t["notebooks"].items() if not k.startswith("07")}
    total = sum(v["seconds"] for v in done.values()) + t.get("data_s", 0)
    span = _span_s(done)
    side = (f" Notebooks ran side by side (the Ray executor), so from the first start to the last end took "
            f"{span / 60:.1f} minutes." if span is not None and span < 0.9 * total else "")
    trained = sum(_training_minutes(ctx).values())
    return (f"Notebooks 01–06 and the data step took {total / 60:.1f} minutes of wall time in their latest execution, "
            f"added up.{side} The runs they use took {trained:.1f} minutes of training when they were trained "
            "(the table's third column, from each run's `summary.json`"
            + (" and the sweeps' `trials.csv`" if _trial_seconds(ctx) is not None else "")
            + "; a run shared by two notebooks counts under the first): a rebuild that reuses its runs executes a "
            "notebook in seconds. The report notebook cannot time itself; `cityseg report` prints its time.")


def _span_s(notebooks: dict) -> float | None:
    """Seconds from the first notebook's start to the last one's end (``finished`` minus ``seconds``)."""
    import datetime as dt

    try:
        ends = [(dt.datetime.strptime(v["finished"], "%Y-%m-%d %H:%M:%S"), float(v["seconds"]))
                for v in notebooks.values()]
    except (KeyError, TypeError, ValueError):
        return None
    if not ends:
        return None
    start = min(end - dt.timedelta(seconds=s) for end, s in ends)
    return (max(end for end, _ in ends) - start).total_seconds()
