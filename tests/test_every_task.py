"""Every command on a small finished run of every registered task: it works, or it says in one
line why it has no meaning for that task (exit 2). A task added to the registry is tested here
without a line of its own; what to expect comes from the task object, never from its name."""

from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, invoke, one_line_error, sets

from echo_cli import tasks
from echo_cli.config.loading import load_config
from echo_cli.store import rundir

# Small enough for a second of training on any task, with its own data keys left at their
# defaults: a new task needs nothing here.
SMALL = ["train.epochs=2", "train.validate_every=1", "train.target_accuracy=null",
         "train.target_loss=null", "eval.sequences=8", "eval.validation_sequences=8",
         "eval.examples=1", "model.units=4", "model.kind=lstm"]


def small(task: str, *extra: str) -> list[str]:
    return [f"data.task={task}", *SMALL, *extra]


@pytest.fixture(scope="module", params=tasks.names())
def finished(request, tmp_path_factory):
    """Two small finished runs of one task (seeds 1 and 2), trained through the CLI."""
    task = request.param
    root = tmp_path_factory.mktemp(task)
    config = root / "task.yaml"
    config.write_text(f"data:\n  task: {task}\n")
    runs = []
    for seed in (1, 2):
        result = invoke("train", config, *sets([*small(task), f"seed={seed}"]),
                        "--out", root / f"run{seed}")
        assert result.exit_code == 0, result.output
        runs.append(root / f"run{seed}")
    cfg = load_config(config, overrides=small(task))
    return cfg, config, runs


@pytest.fixture(autouse=True)
def _columns(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")


def test_train_scores_the_task_beside_its_chance_and_baseline(finished):
    cfg, _, (run, _) = finished
    m = rundir.read_metrics(run)
    assert m.task == cfg.data.task and m.heldout_targets > 0
    assert m.heldout_accuracy == m.heldout_correct / m.heldout_targets
    assert m.chance_accuracy == cfg.chance_accuracy and m.baseline_loss == cfg.baseline_loss


def test_check_data(finished):
    cfg, config, _ = finished
    result = invoke("check-data", config, *sets(small(cfg.data.task)))
    assert result.exit_code == 0, result.output
    assert result.output.strip()


def test_predict(finished):
    cfg, _, (run, _) = finished
    problem = cfg.task.predict_problem(cfg)
    if problem is not None:
        one_line_error(invoke("predict", run, "1", "2", "3"), problem)
        return
    values = [str(int(v)) for v in np.ravel(cfg.task.sequences(cfg, "heldout", 1)[0])]
    result = invoke("predict", run, *values, "--json")
    assert result.exit_code == 0, result.output


def test_stream(finished):
    cfg, _, (run, _) = finished
    problem = cfg.task.stream_problem(cfg)
    result = invoke("stream", run, "--heldout", "3")
    if problem is not None:
        one_line_error(result, problem)
        return
    assert result.exit_code == 0, result.output


def test_inspect(finished):
    cfg, _, (run, _) = finished
    result = invoke("inspect", run, "--heldout", "10", "--out", "seen")
    if cfg.kind.cell is None:
        one_line_error(result, "inspect is for recurrent state")
        return
    assert result.exit_code == 0, result.output
    assert {p.name for p in Path("seen").iterdir()} == {"state.png", "probes.csv", "probes.png"}


def test_results_and_compare_tabulate_the_runs(finished):
    cfg, _, runs = finished
    result = invoke("results", *runs, "--out", "tables")
    assert result.exit_code == 0, result.output
    text = Path("tables/results.md").read_text()
    assert all(rundir.read_metrics(r).name in text for r in runs)
    assert cfg.task.settings(cfg)[0] in text
    result = invoke("compare", *runs)
    assert result.exit_code == 0, result.output
    assert "seed" in result.output


def test_memory_table(finished):
    cfg, _, runs = finished
    result = invoke("memory-table", *runs, "--out", "tables")
    assert result.exit_code == 0, result.output
    assert cfg.task.title in Path("tables/memory.md").read_text()


@pytest.mark.slow
def test_sweep(finished):
    cfg, config, _ = finished
    result = invoke("sweep", config, "--grid", "model.units=3,4", "--workers", "1",
                    *sets([s for s in small(cfg.data.task) if not s.startswith("model.units")]),
                    "--out", "sw")
    assert result.exit_code == 0, result.output
    assert len(rundir.find([Path("sw")])) == 2
    assert (Path("sw") / "summary.md").is_file()


def test_every_config_in_configs_loads_with_its_task():
    """Each shipped config is valid, and its task is a registered one."""
    for path in sorted(CONFIGS.glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.task is tasks.get(cfg.data.task), path.name
