"""`echo-cli bench seeds`: N seeds of one config as one compiled program (train.seeds) against
N separate runs, for N = 1, 2, 4, 8, 16: seeds trained per second of wall time.

    record = run_seeds_bench(Path("configs/lag1.yaml"), sizes=[1, 2, 4, 8, 16], epochs=None)
    record["rows"][3]["speedup"]      # N = 8: one program against 8 runs, one after another

Every measurement is a whole `echo-cli train` in a fresh process, as a user runs it, timed
from spawn to exit. The separate runs are seeds 1..N, one after another (the time of N of them
is the sum of the first N); the program is `train --seeds N`. Each shape is trained once
before it is timed (a chunk's worth of epochs), so the compile cache holds every program and
no figure includes compiling. This module imports no TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from echo_cli.analysis.bench import machine
from echo_cli.config.loading import load_config
from echo_cli.store import rundir
from echo_cli.store import seeds as seed_runs

SIZES = (1, 2, 4, 8, 16)


def _train(config: Path, overrides: list[str], out: Path) -> float:
    """One `echo-cli train` in a child process: its wall seconds.

    Raises:
        RuntimeError: the child failed; the message is its last line of stderr.
    """
    cmd = [sys.executable, "-m", "echo_cli", "train", str(config), "-q", "--out", str(out),
           *(arg for item in ["eval.examples=0", *overrides] for arg in ("--set", item))]
    began = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "COLUMNS": "100"})
    wall = time.perf_counter() - began
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit code {done.returncode}")
    return wall


def run_seeds_bench(config: Path, *, sizes: list[int], epochs: int | None,
                    progress: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Time N seeds as one program and as N separate runs for each N in sizes.

    Returns:
        The record for bench/seeds.json: date, machine, the load around it, config, epochs
        and one row per N (its error, if a run failed).
    """
    from echo_cli.training.loop import chunk_size

    cfg = load_config(config, overrides=[f"train.epochs={epochs}"] if epochs else [])
    base = [f"train.epochs={cfg.train.epochs}"]
    warm = [f"train.epochs={chunk_size(cfg.train.epochs, cfg)}"]  # the same chunk's program
    load_before = os.getloadavg()
    separate: list[float] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="echo-bench-seeds-") as name:
        tmp = Path(name)
        try:
            progress("warming the compile cache: one seed")
            _train(config, warm, tmp / "warm-1")
            for seed in range(cfg.seed, cfg.seed + max(sizes)):
                progress(f"separate runs: seed {seed} of {cfg.seed + max(sizes) - 1}")
                separate.append(_train(config, [*base, f"seed={seed}"], tmp / f"seed-{seed}"))
        except RuntimeError as err:
            return _record(config, cfg, sizes, [{"seeds": n, "error": f"a separate run failed "
                                                                     f"({err})"} for n in sizes],
                           load_before)
        for n in sizes:
            rows.append(_one_program(config, n, base=base, warm=warm, tmp=tmp,
                                     separate=separate, progress=progress))
    return _record(config, cfg, sizes, rows, load_before)


def _one_program(config: Path, n: int, *, base: list[str], warm: list[str], tmp: Path,
                 separate: list[float], progress) -> dict[str, Any]:
    """One row: N seeds as one program beside the first N separate runs."""
    apart = sum(separate[:n])
    row: dict[str, Any] = {"seeds": n, "separate_seconds": apart,
                           "separate_seeds_per_second": n / apart}
    try:
        if n == 1:  # train.seeds 1 is a separate run: the one already timed
            seconds, train = separate[0], None
        else:
            progress(f"{n} seeds as one program: compiling it")
            _train(config, [*warm, f"train.seeds={n}"], tmp / f"warm-{n}")
            progress(f"{n} seeds as one program")
            seconds = _train(config, [*base, f"train.seeds={n}"], tmp / f"seeds-{n}")
            train = seed_runs.read_summary(tmp / f"seeds-{n}").train_seconds
    except (RuntimeError, rundir.DamagedRunError) as err:
        return {**row, "error": str(err)}
    return {**row, "vmapped_seconds": seconds, "vmapped_seeds_per_second": n / seconds,
            "vmapped_train_seconds": train, "speedup": apart / seconds,
            "vs_one_seed": seconds / separate[0]}


def _record(config: Path, cfg, sizes: list[int], rows: list[dict[str, Any]],
            load_before: tuple[float, float, float]) -> dict[str, Any]:
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "config": str(config), "epochs": cfg.train.epochs, "sizes": sizes, "rows": rows}
