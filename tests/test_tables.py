"""The console tables at the widths people use: at 80 columns and at 120 no figure is cut to
"0.99…", every figure appears in full, and a terminal wide enough keeps the table as it was."""

import io
from pathlib import Path

import pytest
from helpers import METRICS, fake_run
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from typer.testing import CliRunner

from echo_cli.analysis import bench, scaling
from echo_cli.cli import app
from echo_cli.config.loading import load_config
from echo_cli.output import report, tables
from echo_cli.sweeps.sweep import summarize
from echo_cli.tasks import echo_views

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = [80, 120]
runner = CliRunner()


def render(renderable, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def assert_in_full(text: str, width: int, *figures: str) -> None:
    """Nothing cut short, no line wider than the terminal, and each figure verbatim."""
    assert "…" not in text, text
    assert max(cell_len(line) for line in text.splitlines()) <= width, text
    for figure in figures:
        assert figure in text, f"{figure!r} is not in\n{text}"


def lines(text: str) -> list[str]:
    """The lines with their runs of spaces made one: a block's "label  value" as "label value"."""
    return [" ".join(line.split()) for line in text.splitlines()]


# ---------------------------------------------------------------------------------------------
# plain data, as each command hands it to tables.py

def sweep_summary() -> list[dict]:
    """Two grid points of three seeds each, through sweep.summarize as `echo-cli sweep` does."""
    runs = []
    for kind, correct, loss, params, seconds in (("lstm", (1996, 1997, 1995), 0.01234, 35300, 5.7),
                                                 ("gru", (1500, 1510, 1490), 1.234, 26500, 4.2)):
        for seed, right in enumerate(correct):
            runs.append({"model.kind": kind, "data.lag": 4, "seed": seed, "status": "done",
                         "heldout_accuracy": right / 2000, "heldout_correct": right,
                         "heldout_targets": 2000, "heldout_loss": loss, "train_seconds": seconds,
                         "samples_to_target": 40000 if kind == "lstm" else None,
                         "parameters": params, "chance_accuracy": 0.01,
                         "baseline_loss": 4.60517})
    return summarize(runs, ["model.kind", "data.lag"])


def sweep_table():
    return tables.sweep_summary_table(sweep_summary(), ["model.kind", "data.lag"],
                                      title="sweep of configs/lag1.yaml: model.kind, data.lag "
                                            "x 3 seeds")


SWEEP_FIGURES = ["0.9980", "0.0005", "(0.9965-0.9989)", "0.7500", "0.0050", "(0.7389-0.7608)",
                 "0.01234", "1.234", "(4.605)", "35,300", "26,500", "5.7", "4.2", "40000",
                 "(3/3)"]


def compare_runs() -> list[dict]:
    """Four runs of a sweep, named as a sweep names them, each with figures of its own."""
    runs = []
    for i, (lag, units) in enumerate([(1, 32), (1, 64), (4, 32), (4, 64)]):
        metrics = {**METRICS, "heldout_accuracy": 0.9980 - i / 10, "ci95_low": 0.9973 - i / 10,
                   "ci95_high": 0.9986 - i / 10, "parameters": 35300 + i,
                   "multiply_adds_per_sample": 155000 + i, "train_seconds": 5.7 + i,
                   "updates": 8000 + i, "target_accuracy": 0.99, "samples_to_target": 40000 + i}
        runs.append({"path": f"runs/sweep-lag1/runs/lag={lag},window={lag + 4},units={units},"
                             f"seed=1",
                     "config": {"data.lag": lag, "data.window": lag + 4, "model.units": units},
                     "metrics": metrics})
    return runs


COMPARE_KEYS = ["data.lag", "data.window", "model.units"]
COMPARE_FIGURES = [figure for i in range(4) for figure in (
    f"{0.9980 - i / 10:.4f}", f"({0.9973 - i / 10:.4f}-{0.9986 - i / 10:.4f})",
    f"{35300 + i:,}", f"{155000 + i:,}", f"{5.7 + i:.1f}", f"{8000 + i}", f"{40000 + i}")]


def result_rows() -> list[dict]:
    cfg = load_config(overrides=["train.target_accuracy=0.99"])
    settings = cfg.task.settings(cfg)
    return [tables.result_row(cfg.dump(), {**METRICS, "target_accuracy": 0.99,
                                           "samples_to_target": 40000}, task_settings=settings),
            tables.result_row(cfg.dump(), {**METRICS, "name": "lag1_sequence",
                                           "heldout_accuracy": 0.8123, "ci95_low": 0.8011,
                                           "ci95_high": 0.8231, "heldout_exact_match": 0.4567},
                              task_settings=settings)]


RESULT_FIGURES = ["0.2500", "(0.1800-0.3400)", "0.8123", "(0.8011-0.8231);", "0.4567", "0.125",
                  "108", "40000", "(to", "0.99)", "1.2"]


def bench_record() -> dict:
    """bench.record over measurements as run_bench returns them: a reference, a repeated run,
    the default with a first (compiling) run, and a backend that failed."""
    def measured(engine, backend, seconds, **kw):
        return bench.Measurement(
            engine, backend, train_seconds=seconds, wall_seconds=[s + 3 for s in seconds],
            phase_seconds=[{"import": 1.0, "train": s} for s in seconds],
            peak_rss_mb=[900.0] * len(seconds), process_peak_rss_mb=[1049.4] * len(seconds),
            updates=8000, heldout_accuracy=[0.99805] * len(seconds), **kw)

    return bench.record(Path("configs/lag1.yaml"), [
        measured("tutorial", "tensorflow", [89.335]),
        measured("fast", "tensorflow", [6.078, 6.2, 5.9]),
        measured("fast", "jax", [2.048], default=True, first_train_seconds=[7.5]),
        bench.Measurement("fast", "torch", error="torch is not installed"),
    ], epochs=2000, repeat=3)


BENCH_FIGURES = ["89.33", "6.08", "(5.90-6.20)", "2.05", "7.50", "90", "1316", "3906", "0.9980",
                 "1049", "1.0×", "(reference)", "14.7×", "43.6×", "(11.9×", "first)", "failed",
                 "installed"]


def scaling_record() -> dict:
    rows = [{"kind": kind, "backend": backend, "length": n, "process_peak_rss_mb": 1049.4,
             "seconds_per_update": 0.0123 * n / 25 * (2 if backend == "tensorflow" else 1)}
            for kind in ("lstm", "gru", "tcn") for backend in ("tensorflow", "jax")
            for n in (25, 100, 400, 1000)]
    rows[0] = {"kind": "lstm", "backend": "tensorflow", "length": 25, "error": "out of memory"}
    return {"machine": "2 cores, AMD EPYC, Linux 6.18", "rows": rows,
            "task": "copy memory (configs/copy_memory.yaml), batch 32",
            "growth": scaling.growth(rows)}


SCALING_FIGURES = ["0.0123", "0.0492", "0.1968", "0.4920", "0.9840", "(1049)", "failed",
                   "∝ T^1.00"]


def vocab_record() -> dict:
    rows = [{"n_unique": n, "encoding": encoding, "train_seconds": 21.335, "peak_rss_mb": 4049.7,
             "process_peak_rss_mb": 4050.2, "heldout_accuracy": 0.2477, "chance_accuracy": 1 / n}
            for n in (100, 10000) for encoding in ("onehot", "embedding")]
    rows.append({"n_unique": 100000, "encoding": "onehot", "error": "out of memory (killed)"})
    return {"config": "configs/lag1.yaml", "epochs": 300, "backend": "tensorflow",
            "machine": "2 cores, AMD EPYC, Linux 6.18", "rows": rows}


VOCAB_FIGURES = ["21.3", "4050", "0.2477", "0.01", "0.0001", "100000", "failed", "memory"]


def memory_rows() -> list[dict]:
    return [{"task": "copy memory", "T": 1000, "kind": "simple_rnn", "parameters": 16123,
             "heldout_loss": 0.0204, "baseline_loss": 0.0208, "figure": "recall",
             "accuracy": 0.1250, "ci95_low": 0.1203, "ci95_high": 0.1302, "chance": 0.125,
             "updates": 8000, "samples": 256000, "train_seconds": 123.4}]


MEMORY_FIGURES = ["16,123", "0.0204", "0.0208", "0.981", "0.1250", "(0.1203-0.1302)", "256000",
                  "123.4"]

TABLES = {
    "sweep": (sweep_table, SWEEP_FIGURES),
    "compare": (lambda: tables.compare_table(compare_runs(), COMPARE_KEYS), COMPARE_FIGURES),
    "results": (lambda: tables.results_table(result_rows()), RESULT_FIGURES),
    "bench": (lambda: tables.bench_table(bench_record()), BENCH_FIGURES),
    "bench scaling": (lambda: tables.scaling_table(scaling_record()), SCALING_FIGURES),
    "bench vocab": (lambda: tables.vocab_table(vocab_record()), VOCAB_FIGURES),
    "memory-table": (lambda: tables.memory_table(memory_rows()), MEMORY_FIGURES),
}


# ---------------------------------------------------------------------------------------------
# every table of many runs, at 80 and 120 columns, and wide

@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", TABLES)
def test_no_figure_is_cut_at_80_or_120_columns(name, width):
    build, figures = TABLES[name]
    assert_in_full(render(build(), width), width, *figures)


@pytest.mark.parametrize("name", TABLES)
def test_a_wide_terminal_prints_the_table_as_rich_lays_it_out(name):
    fitted = TABLES[name][0]()
    assert render(fitted, 220) == render(fitted.table, 220)
    assert "┃" in render(fitted, 220)


def test_the_sweep_summary_is_a_table_at_120_and_a_block_per_grid_point_at_80():
    wide, narrow = render(sweep_table(), 120), render(sweep_table(), 80)
    assert "┃" in wide and "pooled (95% CI)" in wide
    assert "┃" not in narrow
    blocks = lines(narrow)
    at = blocks.index("model.kind=lstm, data.lag=4")
    assert blocks[at:at + 9] == [
        "model.kind=lstm, data.lag=4", "runs 3/3", "accuracy mean ± std 0.9980 ± 0.0005",
        "pooled (95% CI) 0.9980 (0.9965-0.9989)", "chance 0.01", "loss (baseline) 0.01234 (4.605)",
        "params 35,300", "train s 5.7", "samples to target 40000 (3/3)"]
    assert "model.kind=gru, data.lag=4" in blocks
    assert "pooled (95% CI) 0.7500 (0.7389-0.7608)" in blocks


def test_compare_is_a_table_at_120_with_the_run_names_broken_after_commas():
    wide = render(tables.compare_table(compare_runs(), COMPARE_KEYS), 120)
    assert "┃" in wide
    names = "".join(line.split("│")[1].strip() for line in wide.splitlines()
                    if line.startswith("│"))
    assert names == "".join(Path(run["path"]).name for run in compare_runs())  # in full
    narrow = lines(render(tables.compare_table(compare_runs(), COMPARE_KEYS), 80))
    at = narrow.index("lag=4,window=8,units=64,seed=1")
    assert narrow[at + 1:at + 5] == ["data.lag 4", "data.window 8", "model.units 64",
                                     "held-out (95% CI) 0.6980 (0.6973-0.6986)"]


def test_results_and_bench_print_one_block_per_row_at_80_columns():
    results = lines(render(tables.results_table(result_rows()), 80))
    assert "held-out accuracy (95% CI) 0.2500 (0.1800-0.3400)" in results
    assert ("held-out accuracy (95% CI) 0.8123 (0.8011-0.8231); exact match 0.4567"
            in results)
    assert "samples to target 40000 (to 0.99)" in results
    assert "what it tests" not in " ".join(results)  # an empty cell is left out
    record = lines(render(tables.bench_table(bench_record()), 80))
    at = record.index("fast / jax (default)")
    assert record[at + 1:at + 7] == ["train s 2.05", "first run s 7.50", "updates/s 3906",
                                     "held-out acc 0.9980", "peak RSS MB 1049",
                                     "speed-up 43.6× (11.9× first)"]


# ---------------------------------------------------------------------------------------------
# Fitted itself

def figures_table() -> Table:
    table = Table(title="figures")
    for name in ("name", "held-out (95% CI)", "note"):
        table.add_column(name)
    table.add_row("first", "0.9980 (0.9973-0.9986)", "a long note that wraps at its spaces")
    table.add_row("second", "0.1250 (0.1203-0.1302)", "short")
    return table


def test_fitted_keeps_each_column_as_wide_as_its_longest_word_where_rich_would_cut_it():
    assert "…" in render(figures_table(), 40)  # what rich alone does at this width
    text = render(tables.Fitted(figures_table()), 40)
    assert_in_full(text, 40, "0.9980", "(0.9973-0.9986)", "0.1250", "(0.1203-0.1302)")
    assert "┃" in text


def test_fitted_prints_a_block_per_row_where_the_words_cannot_fit_side_by_side():
    text = render(tables.Fitted(figures_table()), 30)
    assert_in_full(text, 30)
    assert lines(text) == ["figures", "", "first", "held-out 0.9980", "(95% CI) (0.9973-0.9986)",
                           "note a long note", "that wraps at", "its spaces", "", "second",
                           "held-out 0.1250", "(95% CI) (0.1203-0.1302)", "note short"]
    assert lines(render(tables.Fitted(figures_table()), 36))[3:5] == [  # room for the labels
        "held-out (95% CI) 0.9980", "(0.9973-0.9986)"]


def test_a_breakable_name_wraps_after_its_commas():
    name = tables.Breakable("lag=1,units=32,seed=1")
    console = Console(file=io.StringIO(), width=80)
    assert Measurement.get(console, console.options, name) == Measurement(9, 21)
    assert lines(render(Padding(name, 0), 10)) == ["lag=1,", "units=32,", "seed=1"]
    assert lines(render(Padding(name, 0), 80)) == ["lag=1,units=32,seed=1"]
    header = tables.Breakable("data.window", after=".+")
    assert lines(render(Padding(header, 0), 8)) == ["data.", "window"]


# ---------------------------------------------------------------------------------------------
# train's and check-data's tables (report.py) at 80 and 120 columns

@pytest.mark.parametrize("width", WIDTHS)
def test_train_tables_fit(width):
    history = [{"epoch": i, "loss": 1.2345 / i, "accuracy": 0.5, "validation_accuracy": 0.4375}
               for i in range(1, 2001)]
    assert_in_full(render(report.history_table(history), width), width, "2000", "0.0006",
                   "0.500", "0.4375", "20 of 2000 epochs shown")
    example = {"sequence": list(range(9000, 9040)), "t": list(range(1, 40)),
               "expected": list(range(9000, 9039)), "predicted": [9000] * 39}
    text = render(echo_views.examples_table([example], lag=1, target="value", width=width), width)
    assert_in_full(text, width, "9038", "9000✗")
    rows = [{"t": 7, "input": 9999, "expected": 9998, "predicted": 9998, "probability": 0.9876,
             "match": True}]
    assert_in_full(render(echo_views.predict_table(rows, lag=1), width), width, "9999", "0.988")


@pytest.mark.parametrize("width", WIDTHS)
def test_bench_phases_and_the_probe_fit(width):
    wall = bench_record()["wall"]
    text = render(tables.wall_table(wall, config="configs/lag1.yaml", backend="fast / jax"), width)
    assert_in_full(text, width, "start-up", f"{wall['seconds']:.1f} s", "2.05", "1.00")
    curve = [{"k": k, "accuracy": 1 / k, "chance": 0.0123} for k in range(1, 9)]
    text = render(report.probe_summary(curve, metric="accuracy", fades=5, sequences=200), width)
    assert_in_full(text, width, "0.125", "0.012", "probe accuracy", "below twice chance at k=5")


@pytest.mark.parametrize("width", WIDTHS)
def test_check_data_fits(width):
    result = runner.invoke(app, ["check-data", str(ROOT / "configs/lag1.yaml")],
                           env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    assert_in_full(result.output, width, "zeros (reset)", "t=1", "y = X(t-1)", "state from")


# ---------------------------------------------------------------------------------------------
# the commands, on run directories made without training

@pytest.mark.parametrize("width", WIDTHS)
def test_compare_and_results_print_every_figure_at_this_width(tmp_path, width):
    runs = [fake_run(tmp_path / f"lag={lag},window={lag + 4},seed=1",
                     {**METRICS, "heldout_accuracy": right / 108, "heldout_correct": right,
                      "ci95_low": right / 108 - 0.0123, "ci95_high": right / 108 + 0.0111,
                      "train_seconds": 12.3 + lag},
                     overrides=[f"data.lag={lag}", f"data.window={lag + 4}"])
            for lag, right in ((1, 100), (4, 47))]
    compared = runner.invoke(app, ["compare", *map(str, runs)], env={"COLUMNS": str(width)})
    assert compared.exit_code == 0, compared.output
    # 100/108 = 0.92593 and 47/108 = 0.43519, each with its interval
    figures = ["0.9259", "(0.9136-0.9370)", "0.4352", "(0.4229-0.4463)", "13.3", "16.3",
               "0.125"]
    assert_in_full(compared.output, width, *figures, "248", "416", "lag=1,", "window=5,")
    listed = runner.invoke(app, ["results", *map(str, runs), "--out", str(tmp_path / "res")],
                           env={"COLUMNS": str(width)})
    assert listed.exit_code == 0, listed.output
    assert_in_full(listed.output, width, *figures, "108", "window 8,")
