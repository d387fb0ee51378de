"""What the tests share: the CLI in-process, the one-line-error assertion, tiny configs, and
run directories made without training.

    result = invoke("train", CONFIG, *sets(TINY_RUN))
    line = one_line_error(result, "data.window must be ≥ 1")
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from typer.testing import CliRunner

from echo_cli.cli import app
from echo_cli.config.loading import load_config, to_yaml
from echo_cli.store import rundir
from echo_cli.store.files import write_json

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
runner = CliRunner()


def invoke(*args):
    """`echo-cli ARGS...` in this process, as CliRunner's Result."""
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *fragments: str, code: int = 2) -> str:
    """Assert the command ended with exit `code` and one line on stderr, `error: ...`, holding
    every fragment, and no traceback anywhere; returns the line."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output
    return lines[0]


def in_empty_dir(tmp_path: Path, monkeypatch, *, columns: int) -> None:
    """Run from an empty directory (a stray runs/ would be visible) at a set terminal width."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", str(columns))


def sets(items) -> list[str]:
    """--set arguments for a list of KEY=VALUE items."""
    return [arg for item in items for arg in ("--set", item)]


# A run that takes well under a second: for CLI plumbing, not for learning.
TINY_RUN = ["data.n_unique=8", "data.length=10", "data.window=2", "model.units=4",
            "train.epochs=6", "train.batch_size=3", "eval.sequences=12"]
# A stateless sweep point that trains in well under a second.
TINY = ["data.n_unique=8", "data.length=10", "data.window=2", "model.units=4",
        "train.epochs=4", "train.batch_size=3", "eval.sequences=10", "model.stateful=false"]

# Small versions of the tutorial's experiments that learn (or fail to) in about a second.
SMALL = {
    "echo_current": ["data.lag=0", "data.window=1", "model.units=15", "model.stateful=false",
                     "train.epochs=150", "data.n_unique=20"],
    "lag1": ["data.n_unique=20", "data.window=3", "model.units=30", "train.epochs=400",
             "train.learning_rate=0.01"],
    "lag_no_context": ["data.n_unique=20", "data.window=1", "train.batch_size=6",
                       "train.epochs=300", "train.learning_rate=0.01"],
}

# A finished run's metrics.json, as train writes it, for tests that need no training.
METRICS = {
    "name": "lag1", "seed": 1, "data_source": "random", "engine": "fast",
    "backend": "tensorflow", "epochs": 6, "epochs_completed": 6, "interrupted": False,
    "model_kind": "lstm", "parameters": 248, "multiply_adds_per_sample": 416, "updates": 18,
    "samples": 54, "train_seconds": 1.2, "peak_rss_mb": 880.0, "chance_accuracy": 0.125,
    "final_train_loss": 2.1, "final_train_accuracy": 0.2, "heldout_accuracy": 0.25,
    "heldout_correct": 27, "heldout_targets": 108, "heldout_sequences": 12, "ci95_low": 0.18,
    "ci95_high": 0.34,
}


def fake_run(path: Path, metrics: dict | None = None, overrides: list[str] = ()) -> Path:
    """A run directory as train leaves it, without training: config.yaml and metrics.json."""
    path.mkdir(parents=True)
    writer = rundir.RunWriter(path)
    writer.save_config(to_yaml(load_config(overrides=list(overrides))))
    write_json(path / rundir.METRICS, metrics or METRICS)  # as given, even if damaged
    return path


def saved_weights(run: Path) -> list:
    """A run's saved weights, read from model.keras without building a model (numpy arrays)."""
    import h5py
    import numpy as np

    with zipfile.ZipFile(run / rundir.MODEL) as z, z.open("model.weights.h5") as f:
        found: list = []
        h5py.File(f, "r").visititems(lambda name, obj: found.append(np.asarray(obj))
                                     if isinstance(obj, h5py.Dataset) else None)
        return found
