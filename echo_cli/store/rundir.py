"""The run directory: the only code that knows its file names and its metrics record.

    writer = RunWriter(path)                    # a directory claim.create gave
    writer.save_config(to_yaml(cfg)); writer.save_history(rows); writer.save_metrics(metrics)
    record = read(path)                         # RunRecord: config, flat config, Metrics
    paths = find([Path("runs/sweep-kinds")])    # a run, or every finished run of a sweep

Every file is written whole or not at all (a temporary file renamed into place), so a reader
never sees half a file. This module imports no TensorFlow or Keras: the model is saved by a
function the caller passes in.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from echo_cli.config.loading import Config, load_config
from echo_cli.errors import EchoError
from echo_cli.store.files import json_text, write_atomic
from echo_cli.store.history import HistoryWriter, history_csv
from echo_cli.store.metrics import SCORE_FIELDS, Metrics  # noqa: F401 - part of this module's API

CONFIG = "config.yaml"
HISTORY = "history.csv"
MODEL = "model.keras"
METRICS = "metrics.json"
CURVES = "curves.png"
LENGTHS = "lengths.png"  # eval.lengths: accuracy against the sequence length
VOCABULARY = "vocabulary.json"
CONFIG_DIGEST = "config.sha256"  # config.yaml's digest from the start, for runs with no metrics
CHECKPOINT = "checkpoint.npz"  # training state of a run in progress (training/checkpoint.py)
COMMAND = "command.txt"  # how the run was made: the command line, overrides, working directory
LOCK = ".echo-cli.lock"  # held by the process writing the run; gone once it has finished
RUNS = Path("runs")  # where runs go when no --out is given
FAILED_MARK = ".failed-"  # a sweep's unfinished run, moved aside
# train.seeds > 1: RUN/seeds/seed=<s>/ is each seed's own run directory, and RUN/seeds.json,
# written last, the summary across them (store/seeds.py)
SEEDS = "seeds"
SEEDS_SUMMARY = "seeds.json"


class RunDirError(EchoError):
    """A run directory that cannot be created or read."""


class DamagedRunError(RunDirError):
    """A run file that exists but cannot be read: which file, and why."""

    def __init__(self, path: Path, file: str, reason: str):
        self.path, self.file, self.reason = path, file, reason
        super().__init__(f"{path / file} is not a run's {file} ({reason}); re-run it")


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
# save

@dataclass(frozen=True)
class RunWriter:
    """Writes one run directory's files, each atomically."""

    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    def history(self, fields: list[str], rows: list[dict[str, Any]] = ()) -> HistoryWriter:
        return HistoryWriter(self.path / HISTORY, fields, rows)

    def save_file(self, name: str, data: str | bytes) -> None:
        write_atomic(self.path / name, data)

    def save_config(self, text: str) -> str:
        """Write config.yaml and its digest beside it (so an edit is caught even in a run that
        never wrote metrics.json); returns the digest, for metrics.json's config_sha256."""
        write_atomic(self.path / CONFIG, text)
        write_atomic(self.path / CONFIG_DIGEST, digest(text) + "\n")
        return digest(text)

    def append_command(self, lines: list[str]) -> None:
        """Add lines to command.txt (written whole: the old text and the new, renamed in)."""
        try:
            before = (self.path / COMMAND).read_text(encoding="utf-8")
        except FileNotFoundError:
            before = ""
        write_atomic(self.path / COMMAND, before + "".join(f"{line}\n" for line in lines))

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
        return flatten(self.cfg.dump())


def is_run(path: Path) -> bool:
    return (path / METRICS).is_file() and (path / CONFIG).is_file()


def is_seeds(path: Path) -> bool:
    """A finished run of several seeds (train.seeds > 1): RUN/seeds.json and RUN/seeds/."""
    return (path / SEEDS_SUMMARY).is_file() and (path / SEEDS).is_dir()


def seed_dir(path: Path, seed: int) -> Path:
    """RUN/seeds/seed=<s>/: one seed's own run directory."""
    return path / SEEDS / f"seed={seed}"


def several_seeds_line(path: Path) -> str:
    """What to give instead of a run of several seeds, where one run is wanted."""
    first = next(iter(seed_runs(path)), path / SEEDS / "seed=S")
    return (f"{path} holds several seeds, each a run directory of its own; give one, e.g. "
            f"{first} (`echo-cli results {path}` lists them all)")


def seed_runs(path: Path) -> list[Path]:
    """The finished run directories of a run of several seeds, in seed order."""
    found = [p for p in (path / SEEDS).glob("seed=*") if is_run(p)]
    return sorted(found, key=lambda p: int(p.name.partition("=")[2] or 0))


def read_metrics(path: Path) -> Metrics:
    """A run's metrics.json, validated.

    Raises:
        DamagedRunError: not JSON, not a mapping, or a field missing or of the wrong type.
    """
    try:
        raw = json.loads((path / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
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


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


MAX_VOCABULARY_BYTES = 64 << 20


def read_vocabulary(path: Path) -> list | None:
    """vocabulary.json (id -> original value), checked: a list of distinct numbers or strings.

    Raises:
        DamagedRunError: not JSON, not such a list, or implausibly large.
    """
    file = path / VOCABULARY
    if not file.is_file():
        return None
    if file.stat().st_size > MAX_VOCABULARY_BYTES:
        raise DamagedRunError(path, VOCABULARY, f"over {MAX_VOCABULARY_BYTES >> 20} MiB")
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise DamagedRunError(path, VOCABULARY, type(err).__name__) from None
    if not isinstance(values, list) or not values:
        raise DamagedRunError(path, VOCABULARY, "not a list of values")
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        raise DamagedRunError(path, VOCABULARY, "holds something other than numbers and "
                                                "strings")
    if len({str(v) for v in values}) != len(values):
        raise DamagedRunError(path, VOCABULARY, "holds a value twice")
    return values


def edited_config(path: Path) -> bool:
    """True when config.yaml differs from the config the run was trained with, as recorded in
    metrics.json or, where that is missing or damaged, in config.sha256 (runs that recorded
    neither, from before echo-cli kept them, are taken as they are)."""
    metrics = try_read_metrics(path)
    recorded = metrics.config_sha256 if metrics is not None else None
    if recorded is None:
        try:
            recorded = (path / CONFIG_DIGEST).read_text(encoding="ascii").strip() or None
        except (OSError, UnicodeDecodeError):
            recorded = None
    if recorded is None:
        return False
    try:
        return digest((path / CONFIG).read_text(encoding="utf-8")) != recorded
    except (OSError, UnicodeDecodeError):
        return True


def read(path: Path) -> RunRecord:
    """A run directory's config and metrics.

    Raises:
        RunDirError: no config.yaml or metrics.json.
        ConfigError, DamagedRunError: a file that cannot be read.
    """
    if is_unfinished(path):
        raise RunDirError(unfinished_line(path))
    if is_seeds(path):
        raise RunDirError(several_seeds_line(path))
    if not is_run(path):
        raise RunDirError(f"{path} is not a run directory (it needs {CONFIG} and {METRICS}); "
                          f"give a directory that `echo-cli train` wrote")
    cfg, metrics = read_config(path), read_metrics(path)
    if edited_config(path):
        raise DamagedRunError(path, CONFIG, "changed after training: it no longer matches the "
                                            "config_sha256 in metrics.json; restore it")
    return RunRecord(path=path, cfg=cfg, metrics=metrics)


def read_history(path: Path) -> list[dict[str, Any]]:
    """history.csv as rows of numbers (epoch as int)."""
    with (path / HISTORY).open(newline="", encoding="utf-8") as fh:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(fh)]


def owner(path: Path) -> str | None:
    """Who holds a run directory's lock: "pid 123 on host, since ..." (None if nobody)."""
    try:
        fd = os.open(path / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: a live process is writing the run
            try:  # the identity, then the reserve's zeros (claim.RESERVE)
                who = json.loads(os.read(fd, 4096).rstrip(b"\0 \n") or b"{}")
            except ValueError:
                who = {}
            return (f"pid {who.get('pid', '?')} on {who.get('host', '?')}, since "
                    f"{who.get('started', '?')}")
        return None  # a lock left by a run that was killed: nobody holds it
    finally:
        os.close(fd)


def is_unfinished(path: Path) -> bool:
    """A run directory that was claimed (its config.yaml is written) but holds no
    metrics.json: still training, or stopped before it could finish."""
    return ((path / CONFIG).is_file() and not (path / METRICS).exists()
            and not (path / SEEDS_SUMMARY).exists())


def unfinished_line(path: Path) -> str:
    """One line on an unfinished run, for tables that leave it out."""
    if is_live(path):
        return f"{path} is still being trained ({owner(path)})"
    if (path / CHECKPOINT).is_file():
        return (f"{path} did not finish (no {METRICS}); resume it with `echo-cli train "
                f"--resume {path}` to include it")
    return f"{path} did not finish (no {METRICS}); train it again to include it"


def is_live(path: Path) -> bool:
    """True while a process holds the run directory's lock (it is still being written)."""
    return owner(path) is not None


def move_aside(run_dir: Path) -> Path:
    """Rename an unfinished run directory to <name>.failed-<k>, never overwriting one, so its
    name is free to run again; returns the new path."""
    k = 1
    while run_dir.with_name(f"{run_dir.name}{FAILED_MARK}{k}").exists():
        k += 1
    aside = run_dir.with_name(f"{run_dir.name}{FAILED_MARK}{k}")
    run_dir.rename(aside)
    return aside


def sweep_runs(path: Path) -> list[Path]:
    """A sweep directory's finished runs, in name order (moved-aside ones left out); a run of
    several seeds counts as its seeds' runs."""
    found: list[Path] = []
    for p in sorted((path / "runs").iterdir()):
        if FAILED_MARK not in p.name:
            found.extend([p] if is_run(p) else seed_runs(p) if is_seeds(p) else [])
    return found


def find(paths: list[Path]) -> list[Path]:
    """The run directories under each path: the path itself, the seeds of a run of several
    seeds, or a sweep's finished runs.

    Raises:
        RunDirError: a path that is neither, or a sweep with no finished run.
    """
    found: list[Path] = []
    for path in paths:
        if is_run(path):
            found.append(path)
        elif is_seeds(path):
            found.extend(seed_runs(path))
        elif (path / "runs").is_dir():
            runs = sweep_runs(path)
            if not runs:
                raise RunDirError(f"{path} holds no finished run")
            found.extend(runs)
        else:
            raise RunDirError(f"{path} is neither a run directory ({CONFIG} and {METRICS}) "
                              f"nor a sweep directory (runs/)")
    return found

