"""The field's inference modes and ONNX deployment from the command line, on a tiny run."""

from __future__ import annotations

import json
import re

import pytest

from cityseg_lib.cli import main
from cityseg_lib.config import load_config

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny_run(demo_root, tmp_path_factory):
    from cityseg_lib.train.engine import fit

    runs = tmp_path_factory.mktemp("runs")
    cfg = load_config(None, {"name": "tiny", "profile": "test", "runs_dir": str(runs), "data_root": str(demo_root),
                             "image_size": [32, 64], "model": "unet", "model_options": {"base_width": 4, "depth": 2},
                             "epochs": 1, "batch_size": 2, "progress": False})
    return fit(cfg)


def test_evaluate_slide_and_flip_tta_from_the_cli(tiny_run, capsys):
    assert main(["evaluate", "--run", str(tiny_run), "--mode", "slide", "--tta", "flip"]) == 0
    out = capsys.readouterr().out
    assert "slide + flip" in out and "mIoU" in out
    assert re.search(r"time per image: median [\d.]+ ms \(95% CI [\d.]+-[\d.]+ over the 3 images\)", out)
    text = (tiny_run / "eval_val_fullres_slide_flip.json").read_text()
    result = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON: other parsers reject it"))
    assert result["mode"] == "slide + flip" and result["resolution"] == "full" and 0 <= result["miou"] <= 1
    assert None in result["class_iou"].values()  # a class absent from the 3 frames: null, not NaN
    with pytest.raises(SystemExit) as bad:  # argparse: unknown mode, exit 2
        main(["evaluate", "--run", str(tiny_run), "--mode", "sliding"])
    assert bad.value.code == 2
    assert main(["evaluate", "--run", str(tiny_run), "--tta", "spin"]) == 2
    assert "tta 'spin' is not one of flip, ms" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tiny_run), "--split", "test"]) == 2  # its labels are all void
    assert "split='test': Cityscapes withholds the test split's labels" in capsys.readouterr().err
    assert not (tiny_run / "eval_test.json").exists()


def test_export_checks_agreement_and_predict_runs_on_onnxruntime(tiny_run, demo_root, tmp_path, capsys):
    onnx = tiny_run / "model.onnx"
    assert main(["export", "--run", str(tiny_run), "--out", str(onnx)]) == 0
    out = capsys.readouterr().out
    agreement = float(out.split("argmax agreement ")[1].split("%")[0])
    assert agreement >= 99.9
    assert main(["export", "--run", str(tiny_run), "--out", str(onnx)]) == 2  # never over an existing file
    assert "exists" in capsys.readouterr().err
    # nothing written when the check cannot run: no frames to check on, or a dataset that moved
    for args, needle in ((["--check-frames", "0"], "check frames=0"),
                         (["--root", str(tmp_path / "nowhere")], "nowhere")):
        assert main(["export", "--run", str(tiny_run), "--out", str(tmp_path / "x.onnx"), *args]) == 2
        assert needle in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()
    preds = tmp_path / "onnx_preds"
    assert main(["predict", "--run", str(tiny_run), "--engine", "onnxruntime", "--input",
                 str(demo_root / "leftImg8bit/val"), "--out", str(preds), "--format", "labelIds"]) == 0
    torch_preds = tmp_path / "torch_preds"
    assert main(["predict", "--run", str(tiny_run), "--input", str(demo_root / "leftImg8bit/val"), "--out",
                 str(torch_preds), "--format", "labelIds"]) == 0
    import numpy as np
    from PIL import Image

    a = sorted(preds.rglob("*.png"))
    b = sorted(torch_preds.rglob("*.png"))
    assert len(a) == len(b) == 3
    same = np.mean([np.mean(np.asarray(Image.open(x)) == np.asarray(Image.open(y))) for x, y in zip(a, b)])
    assert same >= 0.999


def test_a_run_whose_dataset_moved_names_root_in_one_line(tiny_run, demo_root, tmp_path, capsys):
    """README: ``--root`` is the way out when the dataset moved since training. Without it,
    evaluate and export say so in one line naming the run's old dataset, instead of the layout's
    advice to download Cityscapes; with it they score and export."""
    import shutil

    import yaml

    run = tmp_path / "runs" / tiny_run.name
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.onnx", "eval_*.json", ".lock"))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data_root"] = str(tmp_path / "moved_away")
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for argv in (["evaluate", "--run", str(run)], ["export", "--run", str(run), "--out", str(tmp_path / "m.onnx")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "moved_away" in err and "--root" in err and "download" not in err, err
    assert not (tmp_path / "m.onnx").exists() and not list(run.glob("eval_*.json"))
    assert main(["evaluate", "--run", str(run), "--root", str(demo_root)]) == 0
    assert (run / "eval_val.json").is_file()


def test_report_inference_section_on_the_first_frames_says_so(tiny_run, demo_root):
    """Table 14 on fewer frames than the report validates on: scored on those frames, and its text
    says which (a whole-image score that differs from Table 10's is then explained)."""
    from types import SimpleNamespace

    from cityseg_lib import runstore
    from cityseg_lib.report.inference_section import MODES, inference_table, inference_text

    run = str(tiny_run)
    full = runstore.load_per_image(tiny_run)[1]
    assert len(full) == 3
    ctx = SimpleNamespace(main_runs={"U-Net": run}, data_root=demo_root, n_boot=200, _memo={},
                          runs=SimpleNamespace(per_image=lambda r: full, config=lambda r: runstore.load_config(r)))
    table = inference_table(ctx, "U-Net", images=2)
    assert list(table["mode"]) == list(MODES)
    for mode in ("whole", "slide"):  # whole too is predicted frame by frame, and every frame timed
        saved = json.loads((tiny_run / f"eval_val_fullres_{mode}_first2.json").read_text())
        assert saved["images"] == 2 and len(saved["image_seconds"]) == 2 and min(saved["image_seconds"]) > 0
    # the seconds per image carry an interval; each mode's cost is a ratio to whole's, with one
    assert table.loc[0, "time / whole's (95% CI)"] == "1" and table.loc[0, "resolved"] == "–"
    assert all(re.fullmatch(r"[\d.]+ \([\d.]+-[\d.]+\)", v) for v in table["ms / image (95% CI)"])
    assert all(re.fullmatch(r"[\d.]+ \([\d.]+-[\d.]+\)", v) for v in table["time / whole's (95% CI)"][1:])
    assert all(re.fullmatch(r"[+−]?[\d.]+ \([+−]?[\d.]+ to [+−]?[\d.]+\)", v)
               for v in table["vs whole, points (95% CI)"][1:])
    assert "on the first 2 of the 3 validation images (" in inference_text(ctx, "U-Net", images=2)
    text = inference_text(ctx, "U-Net", images=0)
    assert "on the 3 validation images," in text and "over the images)" in text


def test_inference_cost_sentence_follows_the_paired_ratio():
    """A mode is called slower than whole only when the paired interval of the ratio of median
    seconds excludes 1; otherwise the sentence says it was not measurably slower."""
    from cityseg_lib.report.cost import paired_ratio
    from cityseg_lib.report.inference_section import cost_sentence

    base = [0.010, 0.011, 0.012, 0.010, 0.013, 0.011]
    slow = [30 * t for t in base]
    noisy = [0.008, 0.014, 0.009, 0.013, 0.012, 0.010]
    q = paired_ratio(slow, base)
    assert q.resolved and q.ratio == pytest.approx(30) and q.low == pytest.approx(30) == q.high
    assert not paired_ratio(noisy, base).resolved
    assert paired_ratio(base[:1], base[:1]) is None and paired_ratio(base, base[:3]) is None
    text = cost_sentence({"whole": {"image_seconds": base}, "slide": {"image_seconds": slow},
                          "whole + flip": {"image_seconds": noisy}})
    assert text.startswith("Per image, slide took 30.0x (95% CI 30.0-30.0x over the images) as long as the whole-image")
    assert "whole + flip was not measurably slower than the whole-image forward" in text
    assert "whole + flip took" not in text


def test_an_interrupted_predict_resumes_into_its_own_folder_only(tiny_run, demo_root, tmp_path, capsys, monkeypatch):
    """A predict stopped after its first output (Ctrl-C, a full disk, a scheduler's limit) blocked every
    re-run into the same --out ('exists already'); --resume keeps what it wrote and writes the rest,
    byte for byte what one uninterrupted predict writes, and only for the same run, format and mode."""
    import cityseg_lib.evaluate.predict as P

    val = str(demo_root / "leftImg8bit/val")
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["predict", "--run", str(tiny_run), "--input", val, "--out", str(whole), "--format", "color"]) == 0
    real, calls = P.write_new, []

    def stop_after_first(path, write):
        if calls:
            raise KeyboardInterrupt
        calls.append(path)
        return real(path, write)

    monkeypatch.setattr(P, "write_new", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        P.predict_images(tiny_run, val, part, fmt="color", progress=False)
    monkeypatch.setattr(P, "write_new", real)
    args = ["predict", "--run", str(tiny_run), "--input", val, "--out", str(part)]
    capsys.readouterr()
    assert main([*args, "--format", "color"]) == 2  # without --resume: refused, and it says how to go on
    assert "exists already; refusing to overwrite it (choose another --out, or --resume" in capsys.readouterr().err
    assert main([*args, "--format", "overlay", "--resume"]) == 2  # another format: not the same predictions
    assert "holds predictions of another setting (format 'color'" in capsys.readouterr().err
    assert main([*args, "--format", "color", "--resume"]) == 0
    assert "wrote 2 file(s)" in capsys.readouterr().out
    files = sorted(p.relative_to(whole) for p in whole.rglob("*.png"))
    assert len(files) == 3 and files == sorted(p.relative_to(part) for p in part.rglob("*.png"))
    assert all((whole / f).read_bytes() == (part / f).read_bytes() for f in files)
    # a folder of outputs nobody recorded (an older version's, or the user's own) is not resumed into
    (part / P.ORIGIN_FILE).unlink()
    assert main([*args, "--format", "color", "--resume"]) == 2
    assert "no .cityseg-predict.json says what wrote its files" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_predict_lays_its_labels_on_a_sideways_stored_photo_as_it_is_shown(tiny_run, demo_root, tmp_path, engine):
    """A camera stores a portrait photo sideways with an EXIF Orientation tag that every viewer obeys.
    Read as stored, the model saw the frame lying on its side and the label map came out W x H: turned
    90 degrees against the photo the user sees. A demo frame saved sideways with the tag (6: turn 90
    degrees clockwise to show) is predicted upright, like the frame itself, at its shown size."""
    import numpy as np
    from PIL import Image

    frame = sorted((demo_root / "leftImg8bit/val").rglob("*.png"))[0]
    upright = Image.open(frame).convert("RGB")
    src = tmp_path / "in"
    src.mkdir()
    upright.save(src / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored pixels are shown turned 90 degrees clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(src / "b.jpg", quality=100, subsampling=0, exif=exif.tobytes())
    if engine == "onnxruntime" and not (tiny_run / "model.onnx").exists():
        assert main(["export", "--run", str(tiny_run), "--out", str(tiny_run / "model.onnx")]) == 0
    out = tmp_path / "out"
    assert main(["predict", "--run", str(tiny_run), "--engine", engine, "--input", str(src), "--out", str(out),
                 "--format", "labelIds"]) == 0
    a, b = (np.asarray(Image.open(out / n)) for n in ("a.png", "b.png"))
    assert a.shape == b.shape == (upright.height, upright.width)
    assert np.mean(a == b) >= 0.95  # the same frame (JPEG's rounding aside), predicted the same way up
    if engine == "torch":  # the overlay is the upright photo too
        assert main(["predict", "--run", str(tiny_run), "--input", str(src / "b.jpg"), "--out", str(tmp_path / "o"),
                     "--format", "overlay"]) == 0
        overlay = np.asarray(Image.open(tmp_path / "o" / "b_overlay.png"))
        assert overlay.shape == (upright.height, upright.width, 3)


def test_slide_runs_a_crop_trained_model_on_windows_of_its_training_crop(demo_root, tmp_path, monkeypatch):
    """A run trained on 32x64 crops of 64x128 samples (the demo labels' own resolution): ``slide`` got
    windows of image_size, one 64x128 window over the 64x128 frame, and scored exactly what ``whole``
    did. Its windows are now the crop the model learned on, in evaluate and in predict; ``whole``
    still resizes the frame to image_size."""
    import cityseg_lib.evaluate.predict as P
    import cityseg_lib.evaluate.score as S
    from cityseg_lib.evaluate.modes import InferenceMode
    from cityseg_lib.train.engine import fit

    cfg = load_config(None, {"name": "crops", "profile": "test", "runs_dir": str(tmp_path / "runs"),
                             "data_root": str(demo_root), "image_size": [64, 128], "crop_size": [32, 64],
                             "model": "unet", "model_options": {"base_width": 4, "depth": 2}, "epochs": 1,
                             "batch_size": 2, "progress": False})
    run = fit(cfg)
    seen = []

    def recording(load):
        def load_run(*args, **kwargs):
            cfg, model = load(*args, **kwargs)
            model.register_forward_pre_hook(lambda m, inputs: seen.append(tuple(inputs[0].shape[-2:])))
            return cfg, model
        return load_run

    monkeypatch.setattr(S, "load_run", recording(S.load_run))
    monkeypatch.setattr(P, "load_run", recording(P.load_run))
    whole = S.evaluate_run(run, mode=InferenceMode(), images=1)
    assert set(seen) == {(64, 128)}
    seen.clear()
    slide = S.evaluate_run(run, mode=InferenceMode("slide"), images=1)
    assert seen and set(seen) == {(32, 64)}
    assert (slide["per_image"] != whole["per_image"]).any()
    seen.clear()
    frame = sorted((demo_root / "leftImg8bit/val").rglob("*.png"))[0]
    P.predict_images(run, frame, tmp_path / "out", mode=InferenceMode("slide"), progress=False)
    assert seen and set(seen) == {(32, 64)}
