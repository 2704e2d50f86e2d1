"""The report's front and back matter: title, introduction, provenance and notebook timings."""

from __future__ import annotations

import math

import pandas as pd

from .. import study
from .context import ReportContext, devices
from .format import size_hw


# ----------------------------------------------------------------------------- title, introduction


def title_block(ctx: ReportContext) -> str:
    data = "synthetic demo data (procedurally drawn street scenes, not Cityscapes)" if ctx.synthetic \
        else f"Cityscapes at `{ctx.data_root_shown}`"
    lines = [
        "# Semantic segmentation of street scenes: SimpleFCN, U-Net and Swin2-JNet",
        f"**Profile:** `{ctx.profile}` &nbsp;·&nbsp; **Data:** {data} &nbsp;·&nbsp; **Device:** "
        f"{devices(ctx)} &nbsp;·&nbsp; **Built:** {ctx.built}",
    ]
    if ctx.synthetic:
        lines.append(
            '<div class="banner"><b>Synthetic data.</b> Every number in this report was measured on the '
            "generated demo dataset, with the small models and short schedules of the "
            f"<code>{ctx.profile}</code> profile. It shows that the whole study runs and that the models learn; "
            "it says nothing about accuracy on the real Cityscapes (the <code>full</code> profile measures that).</div>"
        )
    return "\n\n".join(lines)


def _all_runs(ctx: ReportContext) -> list[str]:
    runs: list[str] = []

    def walk(v):
        if isinstance(v, str) and v and (study.run_path(v) / "summary.json").is_file():
            runs.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for nb in ("02", "03", "04", "05", "06"):
        walk(ctx.results[nb].get("runs", {}))
        walk(ctx.results[nb].get("tuned_runs", {}))
    return sorted(set(runs))


def introduction(ctx: ReportContext) -> str:
    runs = _all_runs(ctx)
    seconds = sum(study.load_summary(r).get("train_time_s") or 0 for r in runs)
    trials = sum(int(s.get("trials", 0)) for s in ctx.results["06"].get("sweeps", {}).values())
    size = ctx.main["SimpleFCN"]["image_size"]
    return (
        f"This build of the study is the `{ctx.profile}` profile. It trained {len(runs)} complete runs "
        f"(plus {trials} shorter sweep trials) for {seconds / 60:.1f} minutes of training in total, at an input size of "
        f"{size_hw(size)}, and every figure and table below is computed from the files those runs wrote. "
        "Sections 2 to 4 follow the reference study's structure (data, architectures, training method); "
        "Section 5 fills in the results the reference left empty, and Sections 6 and 7 draw conclusions "
        "from them. The provenance block at the end records the code version, packages, hardware and the "
        "time each notebook took."
    )


# ----------------------------------------------------------------------------- provenance


def provenance_table(ctx: ReportContext) -> pd.DataFrame:
    env = ctx.env
    r1 = ctx.results["01"]
    if ctx.synthetic:
        gen = r1.get("generator", {})
        data = (f"SYNTHETIC demo data (cityseg make-demo-data, {gen.get('train', '?')} train / {gen.get('val', '?')} val "
                f"frames at {'x'.join(str(v) for v in gen.get('size', []))}, seed {gen.get('seed', '?')}) at {ctx.data_root_shown}")
    else:
        data = f"Cityscapes at {ctx.data_root_shown}"
    runs = _all_runs(ctx)
    train_s = sum(study.load_summary(r).get("train_time_s") or 0 for r in runs)
    rows = [
        ("profile", ctx.profile),
        ("dataset", data),
        ("device", f"{devices(ctx)}; {env.get('device')}"
                   + (f"; {ctx.results['02']['cpu_threads']} torch CPU thread(s)" if ctx.results["02"].get("cpu_threads")
                      and devices(ctx).startswith("CPU") else "")),
        ("platform", env.get("platform")),
        ("commit", env.get("commit")),
        ("versions", f"python {env.get('python')}, torch {env.get('torch')}, torchvision {env.get('torchvision')}, "
                     f"timm {env.get('timm')}, numpy {env.get('numpy')}"),
        ("runs", f"{len(runs)} run folders under runs/{ctx.profile}/, {train_s / 60:.1f} min of training in total"),
        ("built", ctx.built),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def timings_table(ctx: ReportContext) -> pd.DataFrame:
    t = ctx.results.get("timings", {})
    rows = []
    if "data_s" in t:
        rows.append({"step": "demo data generation / check", "wall time (s)": t["data_s"], "finished": ""})
    for nb, info in t.get("notebooks", {}).items():
        if nb.startswith("07"):
            continue
        rows.append({"step": f"{nb}.ipynb", "wall time (s)": info["seconds"], "finished": info.get("finished", "")})
    rows.append({"step": "07_report.ipynb (this notebook)", "wall time (s)": math.nan, "finished": "running now"})
    return pd.DataFrame(rows)


def timings_note(ctx: ReportContext) -> str:
    t = ctx.results.get("timings", {})
    if not t.get("notebooks"):
        return ("No timings recorded: this notebook was run directly, not through `cityseg report`, which times "
                "each notebook.")
    total = sum(v["seconds"] for k, v in t["notebooks"].items() if not k.startswith("07")) + t.get("data_s", 0)
    return (f"Notebooks 01–06 and the data step took {total / 60:.1f} minutes of wall time in their latest execution "
            "(a notebook whose runs were reused takes seconds; the training time of every run is in its "
            "`summary.json`). The report notebook cannot time itself; `cityseg report` prints its time.")
