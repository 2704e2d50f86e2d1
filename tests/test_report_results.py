"""The notebooks' typed results: they round-trip through JSON, and a missing or malformed file or
field is one line naming the file and the field."""

from __future__ import annotations

import json

import pytest

from cityseg_lib.errors import CitysegError
from cityseg_lib.report.notebook_results import (RESULT_TYPES, BaselineResult, DataResult, LossResult, ReportResult,
                                                 SweepResult, SwinResult, UNetResult, load_result, result_path,
                                                 save_result)

EXAMPLES = {
    "01": DataResult(data_root="/data/cs", synthetic=True, generator=None, splits={"train": {"images": 2}},
                     coarse_counts={"train": 2}, image_sizes={"128x64": 4}, class_stats={"fine": {"pixels": {}}},
                     majority_class="road", majority_miou=0.05, figure1_ids=["a_000000_000000"]),
    "02": BaselineResult(main_run="smoke/simple_fcn-0123abcd", cpu_threads=1),
    "03": UNetResult(main_run="smoke/unet-1", constant_lr_run=None, augment_runs={"none": "smoke/unet-1"}),
    "04": SwinResult(main_run="smoke/swin2_jnet-1", no_dropout_run="smoke/swin2_jnet_no_dropout-1"),
    "05": LossResult(runs={"cross_entropy": ["smoke/unet-1", "smoke/loss_cross_entropy_seed1-2"]}, seeds=[0, 1]),
    "06": SweepResult(sweeps={"unet": {"dir": "smoke/sweep-1", "trials": 10}}, tuned_runs={"unet": "smoke/unet_tuned-1"}),
    "07": ReportResult(best_model="U-Net", conclusions=["**Ranking.** ..."]),
}


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path))


@pytest.mark.parametrize("nb", list(RESULT_TYPES))
def test_every_result_type_round_trips(nb):
    path = save_result("smoke", EXAMPLES[nb])
    assert path == result_path("smoke", nb)
    doc = json.loads(path.read_text())
    assert doc["type"] == type(EXAMPLES[nb]).__name__ and doc["profile"] == "smoke"
    assert load_result("smoke", nb) == EXAMPLES[nb]


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_file_names_the_notebook_to_run():
    with pytest.raises(CitysegError) as err:
        load_result("smoke", "03")
    assert "03.json is missing" in _one_line(err) and "notebooks/03_" in _one_line(err)


def test_missing_field_names_file_and_field():
    path = save_result("smoke", EXAMPLES["03"])
    doc = json.loads(path.read_text())
    del doc["result"]["main_run"]
    path.write_text(json.dumps(doc))
    with pytest.raises(CitysegError) as err:
        load_result("smoke", "03")
    assert str(path) in _one_line(err) and "'main_run'" in _one_line(err) and "UNetResult" in _one_line(err)


def test_wrong_type_of_a_field_names_file_and_field():
    path = save_result("smoke", EXAMPLES["05"])
    doc = json.loads(path.read_text())
    doc["result"]["seeds"] = "zero"
    path.write_text(json.dumps(doc))
    with pytest.raises(CitysegError) as err:
        load_result("smoke", "05")
    assert str(path) in _one_line(err) and "seeds" in _one_line(err)


def test_unknown_field_wrong_type_name_and_broken_json_are_one_line_errors():
    path = save_result("smoke", EXAMPLES["02"])
    doc = json.loads(path.read_text())
    doc["result"]["extra"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(CitysegError, match="unknown key 'extra'"):
        load_result("smoke", "02")
    doc = {"type": "UNetResult", "result": {}}
    path.write_text(json.dumps(doc))
    with pytest.raises(CitysegError) as err:
        load_result("smoke", "02")
    assert "'type' is 'UNetResult', expected 'BaselineResult'" in _one_line(err)
    path.write_text("{not json")
    with pytest.raises(CitysegError) as err:
        load_result("smoke", "02")
    assert str(path) in _one_line(err)


def test_saving_refuses_what_could_not_be_read_back():
    with pytest.raises(CitysegError, match="main_run"):
        save_result("smoke", BaselineResult(main_run=3))  # a run must be a string
    with pytest.raises(CitysegError, match="notebook result dataclass"):
        save_result("smoke", {"main_run": "x"})
