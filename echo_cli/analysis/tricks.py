"""What each start-up trick of training/startup.py saves a user, measured in one run.

    record = measure_tricks(Path("configs/lag1.yaml"), epochs=100, repeat=3)
    record["tricks"]["teardown skip"]["saves_seconds"]      # median without, less with

A whole `echo-cli train` is timed as a fresh process, first with every trick, then with one
trick turned off at a time (patched out before the command runs), alternating, `repeat` times
each; a trick saves the difference of the medians. startup.py keeps a trick only where it
saves at least 0.3 s, or where it is not about time (the quiet stderr). This module imports no
TensorFlow.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from echo_cli.analysis.bench import cache_env, machine

# Python run before `echo-cli` in the child: each turns one trick off.
OFF = {
    "all tricks on": "",
    "lean Keras import": ("import contextlib\nfrom echo_cli.training import startup\n"
                          "startup.hidden_from_keras = lambda *a, **k: contextlib.nullcontext()\n"),
    "teardown skip": ("import sys\nfrom echo_cli.training import startup\n"
                      "startup.finish = lambda code: sys.exit(code)\n"),
}
KEEP_AT = 0.3  # seconds a trick must save to be kept


def _child(prelude: str, config: Path, epochs: int, out: Path, env: dict[str, str]) -> float:
    code = (prelude + "import sys\nfrom echo_cli.__main__ import main\n"
            "sys.argv = ['echo-cli', *sys.argv[1:]]\nmain()\n")
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "train", str(config), "--set",
                           f"train.epochs={epochs}", "--out", str(out)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"train exited with {done.returncode}")
    return wall


def measure_tricks(config: Path, *, epochs: int, repeat: int,
                   progress=lambda text: None) -> dict:
    """Wall seconds of a whole train with each trick off in turn, and what each trick saves."""
    import os

    walls: dict[str, list[float]] = {name: [] for name in OFF}
    with tempfile.TemporaryDirectory(prefix="echo-bench-tricks-") as name:
        tmp = Path(name)
        env = {**os.environ, **cache_env(tmp / "cache")}
        _child("", config, epochs, tmp / "warm", env)  # fill the compile cache first
        for i in range(repeat):
            for trick, prelude in OFF.items():
                progress(f"{trick}, run {i + 1} of {repeat}")
                walls[trick].append(_child(prelude, config, epochs, tmp / f"{i}-{len(walls)}-"
                                           f"{trick.replace(' ', '_')}", env))
    medians = {k: statistics.median(v) for k, v in walls.items()}
    base = medians["all tricks on"]
    tricks = {k: {"median_seconds_without": v, "saves_seconds": v - base,
                  "kept": v - base >= KEEP_AT} for k, v in medians.items() if k != "all tricks on"}
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "config": str(config), "epochs": epochs, "repeat": repeat,
            "median_seconds_all_on": base, "walls": walls, "tricks": tricks}
