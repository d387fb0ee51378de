"""The pieces of `make modern`: training on past the target (train.stop_at_target: false) while
recording when it was reached, scoring at other lengths (eval.lengths), capacity.json, and
`modern-table` over real tiny runs, with the published rows set apart."""

import csv
import json
from pathlib import Path

import pytest
from helpers import CONFIGS, invoke, one_line_error, sets

from echo_cli.store.rundir import read_metrics

SELECTIVE = ["data.noise=6", "data.tokens=2", "data.vocab=6", "model.units=8",
             "train.batch_size=8", "eval.sequences=40", "eval.validation_sequences=20"]
INDUCTION = ["data.length=8", "data.vocab=5", "model.units=8", "train.batch_size=8",
             "eval.sequences=40", "eval.validation_sequences=20", "train.epochs=12",
             "train.target_accuracy=null"]


def train(out, config, *overrides):
    result = invoke("train", CONFIGS / f"{config}.yaml", "--out", out, *sets(overrides))
    assert result.exit_code == 0, result.output
    return read_metrics(out)


# ------------------------------------------------------------------ train.stop_at_target

@pytest.mark.slow
@pytest.mark.parametrize("stop", [True, False])
def test_the_target_is_recorded_and_training_stops_there_or_goes_on(tmp_path, stop):
    # chance is 1/4, so a target of 0.01 is reached at the first validation, after 5 updates
    m = train(tmp_path / "r", "selective_copy", *SELECTIVE, "train.epochs=20",
              "train.validate_every=5", "train.target_accuracy=0.01",
              f"train.stop_at_target={str(stop).lower()}")
    assert m.reached_target is True and m.epochs_to_target == 5
    assert m.epochs_completed == (5 if stop else 20)
    assert m.updates == m.epochs_completed


# ------------------------------------------------------------------ eval.lengths

def test_eval_lengths_scores_the_same_weights_at_each_length(tmp_path):
    m = train(tmp_path / "r", "induction", *INDUCTION, "eval.lengths=[8,16,32]")
    assert sorted(m.heldout_by_length, key=int) == ["8", "16", "32"]
    for figures in m.heldout_by_length.values():
        assert figures["targets"] == 40  # one answer per fresh held-out sequence
        assert figures["accuracy"] == figures["correct"] / figures["targets"]
        assert figures["ci95_low"] <= figures["accuracy"] <= figures["ci95_high"]
    # the trained length, drawn afresh, scores as the main held-out figure does
    assert m.heldout_by_length["8"]["accuracy"] == m.heldout_accuracy
    png = (tmp_path / "r" / "lengths.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("config", "overrides", "fragment"), [
    ("lag1", [], "eval.lengths scores a model at other sequence lengths; data.task: "),
    ("induction", ["model.kind=mlp"], "eval.lengths needs a model.kind that reads any length"),
])
def test_eval_lengths_where_it_cannot_apply_is_refused_in_one_line(config, overrides, fragment):
    result = invoke("train", CONFIGS / f"{config}.yaml",
                    *sets([*overrides, "eval.lengths=[64,128]"]))
    one_line_error(result, fragment)


# ------------------------------------------------------------------ the table


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Plain and selective copying for a GRU and an LRU, an induction run scored at three
    lengths, and the capacity of one of them."""
    root = tmp_path_factory.mktemp("modern")
    for kind in ("gru", "lru"):
        for variable in ("true", "false"):
            train(root / f"{kind}-{variable}", "selective_copy", *SELECTIVE, "train.epochs=10",
                  "train.validate_every=5", "train.target_accuracy=0.01",
                  "train.stop_at_target=false", f"model.kind={kind}",
                  f"data.variable={variable}")
    train(root / "induction", "induction", *INDUCTION, "eval.lengths=[8,16,32]")
    result = invoke("capacity", root / "gru-true")
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.slow
def test_capacity_writes_its_figures_as_json(runs):
    record = json.loads((runs / "gru-true" / "capacity" / "capacity.json").read_text())
    assert record["bound"] == 8 and record["k_max"] == 16 and record["scale"] == 0.8
    assert record["total"] == pytest.approx(sum(record["r2"]))
    assert 0 < record["total"] <= record["bound"]


@pytest.mark.slow
def test_modern_table_sets_the_kinds_side_by_side_and_the_published_rows_apart(runs, tmp_path):
    paths = [runs / name for name in ("gru-true", "gru-false", "lru-true", "lru-false",
                                      "induction")]
    result = invoke("modern-table", *paths, "--out", tmp_path / "res")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "res" / "modern.md").read_text()
    measured, published = text.split("## Published, for comparison (not measured here)")
    for setting in ("selective copying, L=6", "plain copying, L=6"):
        assert f"{setting}: accuracy (95% CI)" in measured
    rows = list(csv.DictReader((tmp_path / "res" / "modern.csv").open()))
    assert len(rows) == 5
    for row in rows:
        m = read_metrics(Path(row["run_dir"]))
        assert float(row["accuracy"]) == m.heldout_accuracy
        cell = f"{m.heldout_accuracy:.3f} ({m.ci95_low:.3f}-{m.ci95_high:.3f})"
        if row["setting"].startswith("induction"):
            assert row["accuracy_at_32"] == str(m.heldout_by_length["32"]["accuracy"])
            assert f"{m.heldout_by_length['32']['accuracy']:.3f}" in measured
        else:
            assert cell in measured, cell
            assert row["updates_to_target"] == "5"  # reached at the first validation
    capacity = json.loads((runs / "gru-true" / "capacity" / "capacity.json").read_text())
    assert f"| gru | selective copying, L=6 | 8 | {capacity['total']:.2f} |" in measured
    assert "18.3%" in published and "Mamba" in published and "18.3%" not in measured
    again = invoke("modern-table", *paths, "--out", tmp_path / "res")
    one_line_error(again, "modern.md", "--force")


def test_modern_table_of_a_directory_without_runs_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    one_line_error(invoke("modern-table", tmp_path / "empty", "--out", tmp_path / "res"),
                   "empty")
