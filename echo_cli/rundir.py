"""The run directory: the only code that knows its file names and its metrics record.

    path = create(None, "lag1")                 # runs/lag1-<time>/, claimed exclusively
    writer = RunWriter(path)
    writer.save_config(to_yaml(cfg)); writer.save_history(rows); writer.save_metrics(metrics)
    record = read(path)                         # RunRecord: config, flat config, Metrics
    paths = find([Path("runs/sweep-kinds")])    # a run, or every finished run of a sweep

Every file is written whole or not at all (a temporary file renamed into place), so a reader
never sees half a file. This module imports no TensorFlow or Keras: the model is saved by a
function the caller passes in.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from echo_cli.config import Config, load_config
from echo_cli.errors import EchoError
from echo_cli.files import csv_text, json_text, write_atomic

CONFIG = "config.yaml"
HISTORY = "history.csv"
MODEL = "model.keras"
METRICS = "metrics.json"
CURVES = "curves.png"
VOCABULARY = "vocabulary.json"
RUNS = Path("runs")  # where runs go when no --out is given
FAILED_MARK = ".failed-"  # a sweep's unfinished run, moved aside


class RunDirError(EchoError):
    """A run directory that cannot be created or read."""


class DamagedRunError(RunDirError):
    """A run file that exists but cannot be read: which file, and why."""

    def __init__(self, path: Path, file: str, reason: str):
        self.path, self.file, self.reason = path, file, reason
        super().__init__(f"{path / file} is not a run's {file} ({reason}); re-run it")


# ---------------------------------------------------------------------------------------------
# the metrics record: one typed definition that every reader uses

SCORE_FIELDS = ("heldout_correct", "heldout_targets", "ci95_low", "ci95_high")


class Metrics(BaseModel):
    """metrics.json. Fields in the order they are written; optional groups are written only
    when they apply (sequence targets, a target accuracy), so the file holds what was set."""

    model_config = ConfigDict(strict=True, extra="ignore")

    name: str
    seed: int
    data_source: str = "random"
    engine: str = "fast"
    backend: str = "tensorflow"
    epochs: int = 0
    epochs_completed: int
    interrupted: bool
    model_kind: str = "lstm"
    parameters: int | None = None
    multiply_adds_per_sample: int | None = None
    updates: int
    samples: int = 0
    train_seconds: float
    peak_rss_mb: float | None = None
    chance_accuracy: float
    final_train_loss: float | None = None
    final_train_accuracy: float | None = None
    heldout_accuracy: float | None = None
    heldout_correct: int | None = None
    heldout_targets: int | None = None
    heldout_sequences: int | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None
    # sequence targets
    heldout_unscored_positions: int | None = None
    heldout_exact_match: float | None = None
    heldout_per_position: list[float | None] | None = None
    # train.target_accuracy
    target_accuracy: float | None = None
    validation_sequences: int | None = None
    reached_target: bool | None = None
    epochs_to_target: int | None = None
    samples_to_target: int | None = None
    final_validation_accuracy: float | None = None

    @model_validator(mode="after")
    def _scored_runs_are_complete(self) -> Metrics:
        if self.heldout_accuracy is not None:
            lacking = [k for k in SCORE_FIELDS if getattr(self, k) is None]
            if lacking:
                raise ValueError(f"a scored run needs {', '.join(lacking)}")
        return self

    @property
    def scored(self) -> bool:
        """True when the run finished with a held-out score."""
        return self.heldout_accuracy is not None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


def metrics_from_dict(raw: Any, *, where: Path) -> Metrics:
    """Validate a metrics mapping.

    Raises:
        DamagedRunError: not a mapping, a missing field or a value of the wrong type.
    """
    if not isinstance(raw, dict):
        raise DamagedRunError(where, METRICS, "not a mapping")
    try:
        return Metrics.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        if first["type"] == "value_error":
            problem = str(first.get("ctx", {}).get("error", first["msg"]))
        else:
            problem = "missing" if first["type"] == "missing" else first["msg"].lower()
        raise DamagedRunError(where, METRICS, f"{field}: {problem}" if field else problem) \
            from None


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config sections to dotted keys: {"data": {"lag": 1}} -> {"data.lag": 1}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ---------------------------------------------------------------------------------------------
# create

def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def create(out: Path | None, name: str) -> Path:
    """Create this run's directory: --out if new or empty, else runs/<name>-<time>[-k].

    The directory is claimed with an exclusive mkdir, so two runs never share one.

    Raises:
        RunDirError: --out is a file or holds files, or the directory cannot be made.
    """
    try:
        if out is not None:
            if out.exists() and not out.is_dir():
                raise RunDirError(f"--out {out} is a file; give a new or empty directory")
            if out.is_dir():
                if any(out.iterdir()):
                    raise RunDirError(f"--out {out} already holds files and is left untouched; "
                                      f"give a new or empty directory")
                return out
            out.mkdir(parents=True)
            return out
        stamp = timestamp()
        RUNS.mkdir(exist_ok=True)
        for suffix in itertools.count(1):
            candidate = RUNS / (f"{name}-{stamp}" + (f"-{suffix}" if suffix > 1 else ""))
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except FileExistsError:
        raise RunDirError(f"--out {out} was created by something else just now; give a new "
                          f"directory") from None
    except OSError as err:
        where = out if out is not None else RUNS
        raise RunDirError(f"cannot create the run directory {where}: {err.strerror}") from None
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# save

def history_csv(rows: list[dict[str, Any]]) -> str:
    """history.csv: epoch, loss, accuracy, then any other logged column in the order first seen."""
    return csv_text(rows, None if rows else ["epoch", "loss", "accuracy"])


@dataclass(frozen=True)
class RunWriter:
    """Writes one run directory's files, each atomically."""

    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    def save_config(self, text: str) -> None:
        write_atomic(self.path / CONFIG, text)

    def save_vocabulary(self, vocabulary: list) -> None:
        write_atomic(self.path / VOCABULARY, json_text(vocabulary))

    def save_history(self, rows: list[dict[str, Any]]) -> None:
        write_atomic(self.path / HISTORY, history_csv(rows))

    def save_metrics(self, metrics: Metrics) -> None:
        write_atomic(self.path / METRICS, json_text(metrics.to_dict()))

    def save_model(self, save: Callable[[Path], None]) -> None:
        """save(path) writes the model to a temporary .keras file, renamed into place."""
        tmp = self.path / f".partial-{os.getpid()}.{MODEL}"
        try:
            save(tmp)
            os.replace(tmp, self.path / MODEL)
        finally:
            tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# read and find

@dataclass(frozen=True)
class RunRecord:
    """A finished or interrupted run, read back: its validated config and its metrics."""

    path: Path
    cfg: Config
    metrics: Metrics

    @property
    def config(self) -> dict[str, Any]:
        """The flattened config: dotted keys in the schema's order."""
        return flatten(self.cfg.model_dump())


def is_run(path: Path) -> bool:
    return (path / METRICS).is_file() and (path / CONFIG).is_file()


def read_metrics(path: Path) -> Metrics:
    """A run's metrics.json, validated.

    Raises:
        DamagedRunError: not JSON, not a mapping, or a field missing or of the wrong type.
    """
    try:
        raw = json.loads((path / METRICS).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedRunError(path, METRICS, type(err).__name__) from None
    return metrics_from_dict(raw, where=path)


def try_read_metrics(path: Path) -> Metrics | None:
    """metrics.json if it is there and sound, else None (an unfinished or damaged run)."""
    try:
        return read_metrics(path)
    except DamagedRunError:
        return None


def read_config(path: Path) -> Config:
    """A run's config.yaml, validated (ConfigError names the problem)."""
    return load_config(path / CONFIG)


def read(path: Path) -> RunRecord:
    """A run directory's config and metrics.

    Raises:
        RunDirError: no config.yaml or metrics.json.
        ConfigError, DamagedRunError: a file that cannot be read.
    """
    if not is_run(path):
        raise RunDirError(f"{path} is not a finished run directory (it needs {CONFIG} and "
                          f"{METRICS}); train one with `echo-cli train CONFIG --out {path}`")
    return RunRecord(path=path, cfg=read_config(path), metrics=read_metrics(path))


def read_history(path: Path) -> list[dict[str, Any]]:
    """history.csv as rows of numbers (epoch as int)."""
    with (path / HISTORY).open(newline="", encoding="utf-8") as fh:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(fh)]


def sweep_runs(path: Path) -> list[Path]:
    """A sweep directory's finished runs, in name order (moved-aside ones left out)."""
    return sorted(p for p in (path / "runs").iterdir() if is_run(p) and FAILED_MARK not in p.name)


def find(paths: list[Path]) -> list[Path]:
    """The run directories under each path: the path itself, or a sweep's finished runs.

    Raises:
        RunDirError: a path that is neither, or a sweep with no finished run.
    """
    found: list[Path] = []
    for path in paths:
        if is_run(path):
            found.append(path)
        elif (path / "runs").is_dir():
            runs = sweep_runs(path)
            if not runs:
                raise RunDirError(f"{path} holds no finished run")
            found.extend(runs)
        else:
            raise RunDirError(f"{path} is neither a run directory ({CONFIG} and {METRICS}) "
                              f"nor a sweep directory (runs/)")
    return found

