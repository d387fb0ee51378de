"""report.py and tables.py from plain data: exact lines, one header per table, no Keras."""

import io
import math

from rich.console import Console

from echo_cli.output import report, tables
from echo_cli.tasks import echo_views

METRICS = {"heldout_accuracy": 0.9980, "heldout_correct": 19961, "heldout_targets": 20000,
           "heldout_sequences": 1000, "ci95_low": 0.9973, "ci95_high": 0.9986,
           "chance_accuracy": 0.01, "data_source": "random", "updates": 8000, "samples": 40000,
           "train_seconds": 5.71, "backend": "jax", "model_kind": "lstm", "parameters": 35300,
           "multiply_adds_per_sample": 155000, "epochs_completed": 2000, "reached_target": True,
           "target_accuracy": 0.99, "final_validation_accuracy": 0.9912}


def render(renderable, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_long_history_is_cut_to_about_twenty_rows_with_the_last():
    shown = report.sample_rows(2000, 20)
    assert 19 <= len(shown) <= 21 and shown[0] == 0 and shown[-1] == 1999
    assert report.sample_rows(7, 20) == list(range(7))
    history = [{"epoch": i + 1, "loss": 1.0, "accuracy": 0.5} for i in range(2000)]
    text = render(report.history_table(history))
    assert f"{len(shown)} of 2000 epochs shown, all in history.csv" in text
    assert "│  2000 │ 1.0000 │    0.500 │" in text and "validation" not in text


def test_heldout_line_puts_the_interval_beside_chance():
    text = " ".join(render(report.heldout_line(METRICS)).split())
    assert text == ("held-out accuracy 0.9980 (95% CI 0.9973-0.9986, 19961/20000 targets in "
                    "1000 fresh sequences) chance 0.0100")


def test_cost_and_target_lines():
    assert report.cost_line(METRICS) == (
        "8000 weight updates on 40000 samples in 5.7 s (jax); lstm with 35,300 trainable "
        "parameters, 155,000 multiply-adds per sample")
    assert render(report.target_line(METRICS), 200).strip() == (
        "validation accuracy 0.9912 reached train.target_accuracy=0.99 after 2000 epochs = "
        "40000 samples; stopped early")
    missed = {**METRICS, "reached_target": False, "final_validation_accuracy": None}
    assert render(report.target_line(missed), 200).strip() == (
        "note: validation accuracy (never measured) never reached train.target_accuracy=0.99")


def test_examples_mark_wrong_predictions():
    example = {"sequence": [5, 6, 7, 8], "t": [1, 2, 3], "expected": [5, 6, 7],
               "predicted": [5, 9, 7]}
    lines = render(echo_views.examples_table([example], lag=1, target="value")).splitlines()
    assert lines[-1].split() == ["predicted", "5", "9✗", "7"]
    assert lines[-2].split() == ["target", "X(t-1)", "5", "6", "7"]


def test_markdown_cells_cannot_split_a_row():
    text = tables.markdown_table(["a", "b"], [["x|y", 1]])
    assert text == "| a | b |\n|---|---|\n| x/y | 1 |\n"


def test_the_sweep_summary_has_one_header_for_the_console_and_the_file():
    summary = [{"model.kind": "lstm", "runs": "2/2", "mean_accuracy": 0.5, "std_accuracy": 0.1,
                "accuracy": 0.5, "ci95_low": 0.4, "ci95_high": 0.6, "chance": 0.01,
                "parameters": 1234, "mean_train_seconds": 2.0, "mean_samples_to_target": None,
                "reached_target": "0/2", "mean_loss": 1.2, "baseline_loss": 4.60517},
               {"model.kind": "mlp", "runs": "0/2", "mean_accuracy": math.nan,
                "std_accuracy": math.nan, "accuracy": math.nan, "ci95_low": math.nan,
                "ci95_high": math.nan, "chance": None, "parameters": None,
                "mean_train_seconds": math.nan, "mean_samples_to_target": None,
                "reached_target": "0/0"}]
    header = ["model.kind", "runs", "accuracy mean ± std", "pooled (95% CI)", "chance",
              "loss (baseline)", "params", "train s", "samples to target"]
    md = tables.sweep_markdown(summary, ["model.kind"], title="kinds").splitlines()
    assert md[4] == "| " + " | ".join(header) + " |"
    assert md[6] == ("| lstm | 2/2 | 0.5000 ± 0.1000 | 0.5000 (0.4000-0.6000) | 0.01 | 1.2 (4.605) "
                     "| 1,234 | 2.0 | - |")
    assert md[7] == "| mlp | 0/2 | - ± - | - (---) | - | - (-) | - | - | - |"
    console = render(tables.sweep_summary_table(summary, ["model.kind"], title="kinds"), 200)
    for column in header:
        assert column in console


def test_result_rows_and_compare_table_use_the_metrics_as_given():
    cfg = {"description": "d", "data": {"lag": 1, "window": 5, "context": "window",
                                        "missing": "drop", "target": "value"},
           "model": {"kind": "gru", "units": 8, "stateful": False},
           "train": {"batch_size": 5, "learning_rate": 0.001, "target_accuracy": None}}
    row = tables.result_row(cfg, {**METRICS, "name": "x", "target_accuracy": None},
                            task_settings=["lag 1", "window 5"])
    assert row["key settings"] == "lag 1, window 5, GRU(8), stateless, batch 5"
    assert row["held-out accuracy (95% CI)"] == "0.9980 (0.9973-0.9986)"
    assert row["samples to target"] == ""
    runs = [{"path": "runs/a", "config": {"data.lag": 1}, "metrics": METRICS},
            {"path": "runs/b", "config": {"data.lag": 2}, "metrics": METRICS}]
    text = render(tables.compare_table(runs, ["data.lag"]), 200)
    assert "data.lag" in text and "0.9980 (0.9973-0.9986)" in text and "35,300" in text
