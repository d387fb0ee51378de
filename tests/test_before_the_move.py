"""The move into folders changed no number: small runs of the tutorial's lag-1 echo, the copy
task and the adding problem give the held-out figures that the code before the move recorded
(tests/data/before_the_move.json, made by the pre-move commit on TensorFlow and JAX)."""

import json

import pytest
from helpers import ROOT, invoke, sets

RECORDED = json.loads((ROOT / "tests" / "data" / "before_the_move.json").read_text())
# The adding problem's held-out fields had other names before the move.
RENAMED = {"heldout_within": "heldout_accuracy", "heldout_within_count": "heldout_correct"}
EXACT = ("heldout_accuracy", "heldout_correct", "heldout_targets", "parameters")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["lag1", "copy_memory", "adding"])
def test_the_same_numbers_as_before_the_move(case, tmp_path):
    before = RECORDED[f"{case}/tensorflow"]
    out = tmp_path / "run"
    result = invoke("train", ROOT / before["config"], "--out", out,
                    *sets(["train.backend=tensorflow", *before["overrides"]]))
    assert result.exit_code == 0, result.output
    now = json.loads((out / "metrics.json").read_text())
    for old_name, value in before.items():
        if old_name in ("config", "overrides"):
            continue
        name = RENAMED.get(old_name, old_name)
        if name in EXACT:
            assert now[name] == value, (name, now[name], value)
        else:
            assert now[name] == pytest.approx(value, rel=1e-5), (name, now[name], value)
