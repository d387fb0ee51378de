"""Side-by-side speed of the engines and backends, measured in one run.

    echo-cli bench configs/lag1.yaml --backends tensorflow,jax --repeat 3

Every measurement is a fresh `echo-cli train` process on the same config, seed and epochs, so
each gets its own peak RSS (from the kernel's rusage) and its own Keras backend. The tutorial
engine on the first backend is the reference that every ratio divides by. This module imports
no TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from echo_cli import rundir
from echo_cli.errors import EchoError


class BenchError(EchoError, ValueError):
    """Benchmark options that cannot run."""


def usable_backends(text: str) -> tuple[list[str], list[str]]:
    """--backends as names that can run here, and a note for each one skipped.

    Raises:
        BenchError: an unknown name, or none that can run.
    """
    from echo_cli.backends import BACKENDS

    names = [b.strip() for b in text.split(",") if b.strip()]
    if not names or any(b not in BACKENDS for b in names):
        raise BenchError(f"--backends takes names from {', '.join(BACKENDS)}, got {text!r}")
    usable, notes = [], []
    for name in names:
        if name == "jax" and importlib.util.find_spec("jax") is None:
            notes.append("jax is not installed, so it is skipped; install it with "
                         "`make setup EXTRAS=dev,jax`")
        else:
            usable.append(name)
    if not usable:
        raise BenchError("no usable backend: install JAX or include tensorflow in --backends")
    return usable, notes


def check_backend(name: str) -> None:
    from echo_cli.backends import BACKENDS

    if name not in BACKENDS:
        raise BenchError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")


def parse_sizes(text: str) -> list[int]:
    """--sizes as integers ≥ 2."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"--sizes takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 2:
        raise BenchError(f"--sizes takes integers ≥ 2, got {text!r}")
    return values


@dataclass
class Measurement:
    engine: str
    backend: str
    train_seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)  # training and evaluation
    process_peak_rss_mb: list[float] = field(default_factory=list)  # the whole child process
    updates: int = 0
    heldout_accuracy: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.engine} / {self.backend}"

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.train_seconds)

    def summary(self) -> dict:
        out = asdict(self)
        if self.train_seconds:
            out.update(
                median_train_seconds=self.median_seconds,
                updates_per_second=self.updates / self.median_seconds,
                median_peak_rss_mb=statistics.median(self.peak_rss_mb),
                median_heldout_accuracy=statistics.median(self.heldout_accuracy),
            )
        return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"


def run_once(config: Path, *, engine: str, backend: str, overrides: list[str]) -> dict:
    """One `echo-cli train` in a child process. Returns its metrics plus process_peak_rss_mb.

    Raises:
        RuntimeError: the child failed; the message is its last line of stderr.
    """
    with tempfile.TemporaryDirectory(prefix="echo-bench-") as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "echo_cli", "train", str(config), "--engine", engine,
               "--set", f"train.backend={backend}", "--set", "eval.examples=0", "--out", str(out)]
        for item in overrides:
            cmd += ["--set", item]
        env = {**os.environ, "COLUMNS": "100"}
        with open(Path(tmp) / "stderr", "w+") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            tail = err.read().strip().splitlines()
        if proc.returncode != 0:
            raise RuntimeError(tail[-1] if tail else f"exit code {proc.returncode}")
        try:
            metrics = rundir.read_metrics(out).to_dict()
        except rundir.DamagedRunError as err:
            raise RuntimeError(str(err)) from None
    # The child's own figure covers training and evaluation; the kernel's covers the whole
    # process, including saving the model (which, under JAX, imports TensorFlow).
    metrics["process_peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return metrics


def run_bench(
    config: Path, *, backends: list[str], epochs: int | None, repeat: int,
    progress=lambda text: None,
) -> list[Measurement]:
    """The tutorial engine on TensorFlow (the tutorial's own stack), then the fast engine on
    every backend."""
    plan = [("tutorial", "tensorflow")] + [("fast", b) for b in backends]
    overrides = [f"train.epochs={epochs}"] if epochs else []
    results = []
    for engine, backend in plan:
        m = Measurement(engine=engine, backend=backend)
        for i in range(repeat):
            progress(f"{m.label}: run {i + 1} of {repeat}")
            try:
                metrics = run_once(config, engine=engine, backend=backend, overrides=overrides)
            except RuntimeError as err:
                m.error = str(err)
                break
            m.train_seconds.append(metrics["train_seconds"])
            m.peak_rss_mb.append(metrics["peak_rss_mb"])
            m.process_peak_rss_mb.append(metrics["process_peak_rss_mb"])
            m.heldout_accuracy.append(metrics["heldout_accuracy"])
            m.updates = metrics["updates"]
        results.append(m)
    return results


def record(config: Path, results: list[Measurement], *, epochs: int | None, repeat: int) -> dict:
    """Everything measured, with ratios against the first (tutorial) measurement."""
    ref = results[0]
    ok = [m for m in results if m.train_seconds]
    ratios = {}
    if ref.train_seconds:
        for m in ok[1:]:
            ratios[m.label] = {
                "speedup_vs_tutorial": ref.median_seconds / m.median_seconds,
                "rss_vs_tutorial": statistics.median(m.peak_rss_mb)
                / statistics.median(ref.peak_rss_mb),
                "accuracy_points_vs_tutorial": 100 * (statistics.median(m.heldout_accuracy)
                                                      - statistics.median(ref.heldout_accuracy)),
            }
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "config": str(config),
        "epochs": epochs,
        "repeat": repeat,
        "reference": ref.label,
        "measurements": [m.summary() for m in results],
        "ratios": ratios,
    }


def run_vocab_bench(
    config: Path, *, sizes: list[int], backend: str, epochs: int, sequences: int,
    progress=lambda text: None,
) -> dict:
    """One-hot against embedding inputs at each vocabulary size: seconds, memory, accuracy."""
    rows = []
    for n in sizes:
        for encoding in ("onehot", "embedding"):
            progress(f"n_unique={n}, {encoding}")
            overrides = [f"data.n_unique={n}", f"model.encoding={encoding}",
                         f"train.epochs={epochs}", f"eval.sequences={sequences}"]
            row = {"n_unique": n, "encoding": encoding}
            try:
                metrics = run_once(config, engine="fast", backend=backend, overrides=overrides)
            except RuntimeError as err:
                row["error"] = str(err)
            else:
                row.update({k: metrics[k] for k in (
                    "train_seconds", "peak_rss_mb", "process_peak_rss_mb", "heldout_accuracy",
                    "chance_accuracy", "updates")})
            rows.append(row)
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "config": str(config), "backend": backend, "epochs": epochs,
            "heldout_sequences": sequences, "rows": rows}
