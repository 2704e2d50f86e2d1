"""``predict`` never writes over a file, mirrors the input tree, and skips its own output folder."""

from __future__ import annotations

import pytest
from PIL import Image

from cityseg_lib.errors import CitysegError
from cityseg_lib.evaluate.predict import plan_outputs
from cityseg_lib.files import write_new


def _tree(root, *names):
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 2)).save(p, format="PNG" if p.suffix == ".png" else "JPEG")
    return root


def test_outputs_mirror_the_input_tree_so_equal_names_stay_apart(tmp_path):
    src = _tree(tmp_path / "in", "a/x.png", "b/x.png", "c.jpg")
    pairs = plan_outputs(src, tmp_path / "out", "labelIds")
    assert [t.relative_to(tmp_path / "out").as_posix() for _, t in pairs] == ["a/x.png", "b/x.png", "c.png"]
    assert [t.name for _, t in plan_outputs(src, tmp_path / "o2", "overlay")] == ["x_overlay.png"] * 2 + [
        "c_overlay.png"]


def test_an_output_folder_equal_to_the_input_would_overwrite_inputs_and_is_refused(tmp_path):
    src = _tree(tmp_path / "in", "x.png")
    with pytest.raises(CitysegError, match=r"x.png is an input image; refusing to overwrite it"):
        plan_outputs(src, src, "labelIds")
    # with a suffix nothing collides: the input stays, the output goes beside it
    assert [t.name for _, t in plan_outputs(src, src, "overlay")] == ["x_overlay.png"]


def test_the_output_folder_inside_the_input_is_not_predicted_again(tmp_path):
    src = _tree(tmp_path / "in", "x.png", "preds/x_overlay.png")
    pairs = plan_outputs(src, src / "preds", "color")
    assert [f.name for f, _ in pairs] == ["x.png"]


def test_existing_outputs_and_a_file_as_out_are_refused_before_any_work(tmp_path):
    src = _tree(tmp_path / "in", "x.png", "y.png")
    _tree(tmp_path / "out", "y.png")
    with pytest.raises(CitysegError, match=r"out/y.png exists already; refusing to overwrite it"):
        plan_outputs(src, tmp_path / "out", "labelIds")
    (tmp_path / "file").write_text("")
    with pytest.raises(CitysegError, match="exists and is not a folder"):
        plan_outputs(src, tmp_path / "file", "labelIds")
    with pytest.raises(CitysegError, match="no such file or folder"):
        plan_outputs(tmp_path / "nope", tmp_path / "out2", "labelIds")


def test_two_inputs_with_one_output_are_refused_before_any_work(tmp_path):
    """a.png and a.jpg both map to a.png: the second write would stop the run halfway and block its re-run."""
    src = _tree(tmp_path / "in", "dup.png", "dup.jpg", "other.png")
    with pytest.raises(CitysegError, match=r"in/dup.jpg and .*in/dup.png would both be written to .*out/dup.png"):
        plan_outputs(src, tmp_path / "out", "labelIds")
    assert not (tmp_path / "out").exists()


def test_a_corrupt_input_is_refused_before_any_output_is_written(tmp_path):
    src = _tree(tmp_path / "in", "a.png", "b.png", "c.png")
    data = (src / "b.png").read_bytes()
    (src / "b.png").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CitysegError, match=r"in/b.png: not a readable image"):
        plan_outputs(src, tmp_path / "out", "labelIds")
    (src / "c.png").write_bytes(b"not an image")
    (src / "b.png").write_bytes(data)
    with pytest.raises(CitysegError, match=r"in/c.png: not a readable image"):
        plan_outputs(src, tmp_path / "out", "labelIds")
    assert not (tmp_path / "out").exists()


def test_write_new_never_replaces_a_file(tmp_path):
    target = tmp_path / "a.png"
    write_new(target, lambda f: f.write(b"1"))
    with pytest.raises(CitysegError, match="exists already"):
        write_new(target, lambda f: f.write(b"2"))
    assert target.read_bytes() == b"1" and not list(tmp_path.glob(".*tmp"))
