"""The result files of ``check-data --json`` and ``evaluate-folder --out`` are written whole or not
at all (a full disk or a kill mid-write leaves the earlier file), and an output that is, or lies
inside, an input of the command (the dataset, the predictions folder) is refused before any work."""

from __future__ import annotations

import shutil

import pytest

from cityseg_lib.cli import main
from test_disk_faults import full_disk


def _refused(capsys, fragment: str) -> None:
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and fragment in err, (out, err)


def _predictions(demo_root, folder):
    """The ground truth's labelIds as a perfect predictions folder."""
    folder.mkdir()
    for f in sorted((demo_root / "gtFine" / "val").rglob("*_gtFine_labelIds.png")):
        shutil.copy(f, folder / f.name)
    return folder


def test_check_data_json_inside_the_dataset_is_refused_and_the_file_kept(demo_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cityseg_lib.data.check.check_dataset", lambda *a, **k: pytest.fail("the check ran"))
    label = sorted((demo_root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))[0]
    before = label.read_bytes()
    link = tmp_path / "summary.json"
    link.symlink_to(label)  # a link out of the dataset into it is the same file
    for target in (label, demo_root / "summary.json", link):
        assert main(["check-data", "--root", str(demo_root), "--json", str(target)]) == 2
        _refused(capsys, f"--json {target}: ")
        assert label.read_bytes() == before
    assert not (demo_root / "summary.json").exists()
    monkeypatch.setenv("CITYSCAPES_DATASET", str(demo_root))
    assert main(["check-data", "--json", str(label)]) == 2
    _refused(capsys, f"--json {label}: lies inside $CITYSCAPES_DATASET {demo_root}")


def test_evaluate_folder_out_inside_the_predictions_or_the_dataset_is_refused(demo_root, tmp_path, capsys,
                                                                             monkeypatch):
    pred = _predictions(demo_root, tmp_path / "pred")
    monkeypatch.setattr("cityseg_lib.evaluate.folder.evaluate_folder", lambda *a, **k: pytest.fail("it evaluated"))
    first = sorted(pred.iterdir())[0]
    before = first.read_bytes()
    for target, fragment in [(first, f"lies inside --pred {pred}"), (pred / "new" / "r.json", f"lies inside --pred {pred}"),
                             (demo_root / "r.json", f"lies inside --gt {demo_root}")]:
        assert main(["evaluate-folder", "--pred", str(pred), "--gt", str(demo_root), "--out", str(target)]) == 2
        _refused(capsys, f"--out {target}: {fragment}")
    assert first.read_bytes() == before and not (pred / "new").exists() and not (demo_root / "r.json").exists()


@pytest.mark.parametrize("command", ["check-data", "evaluate-folder"])
def test_a_result_file_that_cannot_be_written_whole_leaves_the_earlier_one(demo_root, tmp_path, capsys, monkeypatch,
                                                                           command):
    pred = _predictions(demo_root, tmp_path / "pred")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = out_dir / "result.json"
    result.write_text('{"earlier": true}\n')
    argv = {"check-data": ["check-data", "--root", str(demo_root), "--fast", "--json", str(result)],
            "evaluate-folder": ["evaluate-folder", "--pred", str(pred), "--gt", str(demo_root), "--out", str(result)]}
    full_disk(monkeypatch, out_dir, room=20)  # the disk fills 20 bytes into the new file
    assert main(argv[command]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert result.read_text() == '{"earlier": true}\n' and sorted(p.name for p in out_dir.iterdir()) == ["result.json"]
    monkeypatch.undo()  # room again: the same command writes the file
    assert main(argv[command]) == 0
    assert result.read_text().startswith("{\n")
