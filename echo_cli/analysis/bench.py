"""Speed and memory, measured in one run, side by side.

    echo-cli bench configs/lag1.yaml --repeat 3     # engines: the tutorial loop vs the default
    echo-cli bench scaling                          # seconds per update as sequences grow
    echo-cli bench vocab                            # one-hot vs embedding as n_unique grows

Every measurement is a fresh `echo-cli` process, so each gets its own peak RSS (from the
kernel's rusage), its own Keras backend and its own wall time. The engines bench runs the
tutorial engine (the reference every ratio divides by), then the default (train.backend auto)
twice under JAX: with an empty compile cache (the first run) and again with it full (a cached
run); it also times a whole `echo-cli train` by phase and a pipe through `echo-cli stream`,
calm and with one core kept busy.
This module imports no TensorFlow.
"""

from __future__ import annotations

import contextlib
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

from echo_cli.errors import EchoError
from echo_cli.store import rundir


class BenchError(EchoError, ValueError):
    """Benchmark options that cannot run."""


def usable_backends(text: str) -> tuple[list[str], list[str]]:
    """--backends as names that can run here, and a note for each one skipped.

    Raises:
        BenchError: an unknown name, or none that can run.
    """
    from echo_cli.training.backends import BACKENDS

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
    from echo_cli.training.backends import BACKENDS

    if name not in BACKENDS:
        raise BenchError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")


def parse_sizes(text: str, *, name: str = "--sizes", least: int = 2,
                most: int = 1_000_000) -> list[int]:
    """A comma-separated list of integers from `least` to `most` (--sizes, --lengths)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"{name} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < least or max(values) > most:
        raise BenchError(f"{name} takes integers from {least} to {most:,}, got {text!r}")
    return values


@dataclass
class Measurement:
    engine: str
    backend: str
    default: bool = False  # train.backend auto: what `echo-cli train` runs
    train_seconds: list[float] = field(default_factory=list)  # a cached run's, under JAX
    first_train_seconds: list[float] = field(default_factory=list)  # JAX, empty compile cache
    wall_seconds: list[float] = field(default_factory=list)  # the whole process
    phase_seconds: list[dict] = field(default_factory=list)
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
        if self.first_train_seconds:
            out["median_first_train_seconds"] = statistics.median(self.first_train_seconds)
        if self.train_seconds:
            out.update(
                median_wall_seconds=statistics.median(self.wall_seconds),
                median_process_peak_rss_mb=statistics.median(self.process_peak_rss_mb),
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


def run_once(config: Path, *, engine: str, backend: str | None, overrides: list[str],
             env: dict[str, str] | None = None) -> dict:
    """One `echo-cli train` in a child process (backend None: the default, auto). Returns its
    metrics plus process_peak_rss_mb and wall_seconds (spawn to exit).

    Raises:
        RuntimeError: the child failed; the message is its last line of stderr.
    """
    with tempfile.TemporaryDirectory(prefix="echo-bench-") as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "echo_cli", "train", str(config), "--engine", engine,
               "--set", "eval.examples=0", "--out", str(out)]
        if backend is not None:
            cmd += ["--set", f"train.backend={backend}"]
        for item in overrides:
            cmd += ["--set", item]
        status, usage, wall, tail = _child(cmd, env=env, tmp=Path(tmp))
        if status != 0:
            raise RuntimeError(tail[-1] if tail else f"exit code {status}")
        try:
            metrics = rundir.read_metrics(out).to_dict()
        except rundir.DamagedRunError as err:
            raise RuntimeError(str(err)) from None
    # The child's own figure covers training and evaluation; the kernel's covers the whole
    # process, from the import of Keras to the last file saved.
    metrics["process_peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    metrics["wall_seconds"] = wall
    return metrics


def _child(cmd: list[str], *, env: dict[str, str] | None, tmp: Path, stdin=None):
    """Run cmd to its end: (exit code, rusage, wall seconds, stderr lines)."""
    with open(tmp / "stderr", "w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "COLUMNS": "100", **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        err.seek(0)
        tail = err.read().strip().splitlines()
    return os.waitstatus_to_exitcode(status), usage, wall, tail


def cache_env(cache: Path) -> dict[str, str]:
    """A child's environment with its own (empty) JAX compile cache, and the user's own
    matplotlib cache, so that only the compile cache starts empty."""
    mpl = os.environ.get("MPLCONFIGDIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib")
    return {"XDG_CACHE_HOME": str(cache), "MPLCONFIGDIR": mpl}


def default_backend() -> str:
    """The backend `echo-cli train` picks for the fast engine here (auto)."""
    from echo_cli.training.backends import choose

    return choose("auto", engine="fast", here=False)[0]


def run_bench(
    config: Path, *, backends: list[str], epochs: int | None, repeat: int,
    progress=lambda text: None,
) -> list[Measurement]:
    """The tutorial engine on TensorFlow (the tutorial's own stack), the default (auto), then
    the fast engine on every other backend asked for. Under JAX each repeat is two runs: with
    an empty compile cache, then with it full."""
    default = default_backend()
    plan = [("tutorial", "tensorflow", False), ("fast", default, True)]
    plan += [("fast", b, False) for b in backends if b != default]
    overrides = [f"train.epochs={epochs}"] if epochs else []
    results = []
    for engine, backend, is_default in plan:
        m = Measurement(engine=engine, backend=backend, default=is_default)
        for i in range(repeat):
            progress(f"{m.label}{' (default)' * is_default}: run {i + 1} of {repeat}")
            try:
                with tempfile.TemporaryDirectory(prefix="echo-bench-cache-") as cache:
                    env = cache_env(Path(cache))
                    asked = None if is_default else backend
                    metrics = run_once(config, engine=engine, backend=asked,
                                       overrides=overrides, env=env)
                    if backend == "jax":  # that was the first run; now a cached one
                        m.first_train_seconds.append(metrics["train_seconds"])
                        progress(f"{m.label}: run {i + 1} of {repeat}, with the cache full")
                        metrics = run_once(config, engine=engine, backend=asked,
                                           overrides=overrides, env=env)
            except RuntimeError as err:
                m.error = str(err)
                break
            if metrics["backend"] != backend:
                m.error = f"it ran on {metrics['backend']}, not {backend}"
                break
            m.train_seconds.append(metrics["train_seconds"])
            m.peak_rss_mb.append(metrics["peak_rss_mb"])
            m.process_peak_rss_mb.append(metrics["process_peak_rss_mb"])
            m.heldout_accuracy.append(metrics["heldout_accuracy"])
            m.wall_seconds.append(metrics["wall_seconds"])
            m.phase_seconds.append(metrics.get("phase_seconds") or {})
            m.updates = metrics["updates"]
        results.append(m)
    return results


def run_stream_bench(numbers: int, *, progress=lambda text: None) -> dict:
    """Seconds for `echo-cli stream` to echo `numbers` piped integers, on the default backend,
    with the machine as it is (calm) and again with one core kept busy by a busy loop.

    A model of configs/stream.yaml, trained briefly (speed does not depend on how well), is fed
    `numbers` random integers, each of which must come back as one line; a pipe of one integer
    times the start-up alone. Each figure also records the load average when it began.

    Raises:
        RuntimeError: a step failed; the message says which.
    """
    import numpy as np

    if not STREAM_CONFIG.is_file():
        raise RuntimeError(f"{STREAM_CONFIG} is missing; run bench from the repository")
    with tempfile.TemporaryDirectory(prefix="echo-bench-stream-") as name:
        tmp = Path(name)
        progress("stream: training a model of configs/stream.yaml for 12 epochs")
        cmd = [sys.executable, "-m", "echo_cli", "train", str(STREAM_CONFIG), "--set",
               "train.epochs=12", "--set", "eval.sequences=12", "--out", str(tmp / "run")]
        status, _, _, tail = _child(cmd, env=None, tmp=tmp)
        if status != 0:
            raise RuntimeError(tail[-1] if tail else f"training exited with {status}")
        backend = rundir.read_metrics(tmp / "run").backend
        values = np.random.default_rng(0).integers(0, 100, size=numbers)
        figures = {}
        for busy in (False, True):
            with busy_core() if busy else contextlib.nullcontext():
                load = os.getloadavg()[0]
                timings = {count: _time_stream(tmp, values[:count], progress=progress,
                                               busy=busy) for count in (1, numbers)}
            whole, startup = timings[numbers], timings[1]
            # after the start-up: None where the pipe took hardly longer than one number
            # (the difference is then the start-up's own noise)
            steady = whole - startup
            figures[busy] = {"seconds": whole, "startup_seconds": startup,
                             "numbers_per_second": numbers / whole,
                             "steady_numbers_per_second": (numbers - 1) / steady
                             if steady > 0.1 * whole else None, "load_average": load}
    return {"numbers": numbers, "backend": backend, **figures[False],
            "busy": {"cores_busy": 1, **figures[True]}}


@contextlib.contextmanager
def busy_core():
    """One core kept busy by a busy loop in another process, stopped on the way out."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.2)  # running before the measurement starts
        yield proc
    finally:
        proc.kill()
        proc.wait()


# spins; ends by itself if its parent is gone without stopping it
BUSY_LOOP = """import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


def _time_stream(tmp: Path, values, *, progress, busy: bool) -> float:
    """Seconds for one `echo-cli stream` of the run in tmp to answer values from a file.

    Raises:
        RuntimeError: it failed, or answered another number of lines.
    """
    count = len(values)
    progress(f"stream: piping {count:,} integers" + (", one core kept busy" if busy else ""))
    (tmp / "in.txt").write_text("".join(f"{v}\n" for v in values))
    with open(tmp / "in.txt") as stdin, open(tmp / "out.txt", "w") as out:
        began = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "echo_cli", "stream", str(tmp / "run")],
                              stdin=stdin, stdout=out, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - began
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"stream exited with {proc.returncode}")
    answered = (tmp / "out.txt").read_text().count("\n")
    if answered != count:
        raise RuntimeError(f"stream answered {answered} lines for {count} integers")
    return seconds


STREAM_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "stream.yaml"


def record(config: Path, results: list[Measurement], *, epochs: int | None, repeat: int,
           stream: dict | None = None) -> dict:
    """Everything measured, with ratios against the first (tutorial) measurement, where a
    user's seconds go in a whole default `echo-cli train`, and the stream's rate."""
    ref = results[0]
    ok = [m for m in results if m.train_seconds]
    ratios = {}
    if ref.train_seconds:
        for m in ok[1:]:
            ratios[m.label] = {
                "speedup_vs_tutorial": ref.median_seconds / m.median_seconds,
                "rss_vs_tutorial": statistics.median(m.peak_rss_mb)
                / statistics.median(ref.peak_rss_mb),
                "process_rss_vs_tutorial": statistics.median(m.process_peak_rss_mb)
                / statistics.median(ref.process_peak_rss_mb),
                "accuracy_points_vs_tutorial": 100 * (statistics.median(m.heldout_accuracy)
                                                      - statistics.median(ref.heldout_accuracy)),
            }
            if m.first_train_seconds:
                ratios[m.label]["first_run_speedup_vs_tutorial"] = (
                    ref.median_seconds / statistics.median(m.first_train_seconds))
    default = next((m for m in ok if m.default), None)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "config": str(config),
        "epochs": epochs,
        "repeat": repeat,
        "reference": ref.label,
        "default": default.label if default else None,
        "measurements": [m.summary() for m in results],
        "ratios": ratios,
        "wall": wall_phases(default) if default else None,
        "stream": stream,
    }


PHASES = ("import", "build", "compile", "train", "evaluate", "save")


def wall_phases(m: Measurement) -> dict:
    """A whole `echo-cli train` (its median run by wall time), in phases; start-up is the rest
    (Python, the command line, reading the config, the exit)."""
    i = sorted(range(len(m.wall_seconds)), key=m.wall_seconds.__getitem__)[
        len(m.wall_seconds) // 2]
    phases = {k: m.phase_seconds[i].get(k, 0.0) for k in PHASES}
    wall = m.wall_seconds[i]
    return {"seconds": wall, "phases": {"start-up": max(0.0, wall - sum(phases.values())),
                                        **phases}}
