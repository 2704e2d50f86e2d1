"""The commands README.md and docs/scale-out.md show exist as written: every ``cityseg`` subcommand
and flag in their code blocks is one the parser knows, every ``key=value`` of ``train`` and ``sweep``
a config key, and every ``make`` target the README names one the Makefile defines (a renamed flag,
key or target fails here, not in a user's terminal)."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from cityseg_lib.cli import build_parser
from cityseg_lib.config import TrainConfig
from cityseg_lib.sweep.config import SweepConfig

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "scale-out.md"]
TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}
SWEEP_KEYS = {f.name for f in dataclasses.fields(SweepConfig)}


def _commands(path: Path) -> list[list[str]]:
    """The ``cityseg`` commands of the file's code blocks (continuation lines joined, comments
    dropped), each as its words from the subcommand on; ``torchrun ... -m cityseg_lib.cli`` too."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):
                if word.endswith("cityseg") or word == "cityseg_lib.cli":
                    out.append(words[i + 1:])
                    break
    return out


def _options(parser) -> dict[str, set[str]]:
    sub = next(a for a in parser._actions if a.dest == "command")
    return {name: {s for a in p._actions for s in a.option_strings} for name, p in sub.choices.items()}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_cityseg_command_of_the_docs_has_its_subcommand_flags_and_keys(path):
    options = _options(build_parser())
    commands = _commands(path)
    assert commands, f"{path}: no cityseg command found"
    for words in commands:
        assert words and words[0] in options, f"{path}: unknown subcommand in `cityseg {' '.join(words)}`"
        flags = {w.split("=")[0] for w in words[1:] if w.startswith("--")}
        unknown = sorted(flags - options[words[0]])
        assert not unknown, f"{path}: `cityseg {' '.join(words)}`: {unknown} not among {sorted(options[words[0]])}"
        keys = {w.split("=")[0] for w in words[1:] if "=" in w and not w.startswith("-")}
        if words[0] == "sweep":  # base.KEY is a training key, the others the sweep's own
            wrong = [k for k in keys if k.removeprefix("base.") not in (TRAIN_KEYS if k.startswith("base.") else SWEEP_KEYS)]
        else:
            wrong = sorted(keys - TRAIN_KEYS) if words[0] == "train" else []
        assert not wrong, f"{path}: `cityseg {' '.join(words)}`: unknown config key(s) {wrong}"


def test_every_make_target_the_readme_names_is_in_the_makefile():
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", (ROOT / "README.md").read_text()))
    assert named >= {"report", "test", "lab", "tensorboard"}
    assert named <= targets, sorted(named - targets)
