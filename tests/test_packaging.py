"""Project plumbing: environment.yml agrees with pyproject.toml; the console script exists."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"


def test_console_script_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["cityseg"] == "cityseg_lib.cli:main"


def test_torch_range_admits_the_local_wheels():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {_name(d): d for d in project["dependencies"]}
    from packaging.specifiers import SpecifierSet

    assert "2.14.1" in SpecifierSet(deps["torch"][len("torch"):])
    assert "0.29.1" in SpecifierSet(deps["torchvision"][len("torchvision"):])


def test_the_command_line_answers_help_and_argument_errors_without_loading_torch():
    """`cityseg --help`, the parser and `cityseg report`'s arguments import no torch, timm or
    matplotlib (the report package loads its sections on first use): 0.2 s instead of ~11 s."""
    import subprocess
    import sys

    code = ("import sys, cityseg_lib.cli as c, cityseg_lib.report as r; c.build_parser(); "
            "print(sorted(m for m in ('torch', 'timm', 'matplotlib', 'pandas') if m in sys.modules)); "
            "r.pct; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    light, after = done.stdout.split("\n")[:2]
    assert light == "[]"
    assert after == "True"  # a section's name, once used, loads it (and what it needs)


def test_timm_is_imported_only_when_a_swin_is_built():
    """Importing the models and building a U-Net loads no timm (seconds a U-Net process need not
    pay); building a Swin2-JNet does (models/timm_weights.py imports it there)."""
    import subprocess
    import sys

    code = ("import sys, cityseg_lib.models as m; m.build_model('unet', base_width=4, depth=2); print('timm' in sys.modules); "
            "m.build_model('swin2_jnet', encoder='swinv2_tiny_window8_256', pretrained=False, img_size=(64, 64), "
            "encoder_kwargs=dict(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4], window_size=4)); "
            "print('timm' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]
