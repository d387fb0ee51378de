"""Cost as the work grows: seconds per update as sequences grow (bench scaling), and one-hot
against embedding inputs as the vocabulary grows (bench vocab).

    record = run_scaling_bench(kinds=["lstm", "tcn"], backends=["jax"], lengths=[25, 100],
                               updates=60)
    record = run_vocab_bench(Path("configs/lag1.yaml"), sizes=[100, 1000], backend="jax",
                             epochs=300, sequences=200)

Each measurement is a fresh `echo-cli` process (bench.run_once). This module imports no
TensorFlow.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from echo_cli.analysis.bench import BenchError, machine, run_once


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


# ---------------------------------------------------------------------------------------------
# cost as sequences grow

# units at about equal trainable size on copy memory: 12k parameters for lstm, gru and tcn (make
# memory), 16k for the LRU and S6 (two blocks each, with their MLP or gate); the echo state
# network trains only its readout (1.3k) beside a fixed reservoir of 128
SCALING_KINDS = {"lstm": 48, "gru": 56, "tcn": 16, "lru": 24, "s6": 16, "esn": 128}
COPY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "copy_memory.yaml"


def parse_names(text: str, allowed, what: str) -> list[str]:
    """A comma-separated list of names from `allowed`.

    Raises:
        BenchError: an empty list or an unknown name.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if not names or unknown:
        raise BenchError(f"{what} takes names from {', '.join(allowed)}, got {text!r}")
    return names


def run_scaling_bench(*, kinds: list[str], backends: list[str], lengths: list[int],
                      updates: int, progress=lambda text: None) -> dict:
    """Seconds per update (warm: after the first chunk, which compiles) and the process's peak
    RSS of each kind on each backend, on copy memory at each total sequence length (T + 20:
    the 10 symbols and the 10 recall steps)."""
    if not COPY_CONFIG.is_file():
        raise BenchError(f"{COPY_CONFIG} is missing; run bench from the repository")
    rows = []
    for backend in backends:
        for kind in kinds:
            for length in lengths:
                progress(f"{kind} on {backend}, {length} steps")
                overrides = [f"model.kind={kind}", f"model.units={SCALING_KINDS[kind]}",
                             f"data.delay={length - 20}", f"train.epochs={updates}",
                             "train.target_accuracy=null", "eval.sequences=32"]
                row = {"kind": kind, "backend": backend, "length": length}
                try:
                    metrics = run_once(COPY_CONFIG, engine="fast", backend=backend,
                                       overrides=overrides)
                except RuntimeError as err:
                    row["error"] = str(err)
                else:
                    row.update({k: metrics[k] for k in (
                        "seconds_per_update", "train_seconds", "updates", "parameters",
                        "peak_rss_mb", "process_peak_rss_mb")})
                rows.append(row)
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "task": "copy memory (configs/copy_memory.yaml), batch 32", "updates": updates,
            "rows": rows, "growth": growth(rows)}


def growth(rows: list[dict]) -> dict[str, float]:
    """How seconds per update grow with length, per kind and backend: the least-squares slope
    of log(seconds) against log(length) over the three longest lengths measured (1: linear in
    T). The shortest lengths are left out when there are more, since a fixed cost per update
    dominates them, and a fit over three is steadier than the slope between two."""
    out = {}
    for key in sorted({(r["kind"], r["backend"]) for r in rows}):
        done = sorted((r["length"], r["seconds_per_update"]) for r in rows
                      if (r["kind"], r["backend"]) == key and r.get("seconds_per_update"))[-3:]
        if len(done) >= 2:
            xs = [math.log(length) for length, _ in done]
            ys = [math.log(seconds) for _, seconds in done]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            covariance = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            out[f"{key[0]} / {key[1]}"] = covariance / sum((x - mx) ** 2 for x in xs)
    return out
