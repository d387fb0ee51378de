"""What a config needs, estimated before anything starts, and refused when it cannot fit.

    check(cfg)                  # LimitError: "train.epochs=1000000000000 needs about 236 TiB
                                #   for the per-epoch history; this machine has 23.5 GiB; ..."
    chunk_sequences(cfg)        # training sequences generated and framed at once

The estimate adds up what is held at once: the model's weights with their gradients and Adam
state, one chunk of training sequences and its activations, the held-out sequences and one
chunk of their predictions, and the per-epoch history. Training sequences are generated chunk by
chunk, so train.epochs costs only its history. A config is refused, naming the key behind the
largest part, when the total and a runtime allowance exceed this machine's memory.
This module imports no TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from echo_cli.config.schema import Config
from echo_cli.errors import EchoError

RUNTIME_BYTES = 1 << 30  # Python, TensorFlow or JAX, and Keras themselves
CHUNK_BYTES = 256 << 20  # training data framed at once
MAX_CHUNK = 50  # sequences per compiled chunk (or Keras epoch)
EVAL_CHUNK = 200  # held-out sequences predicted side by side
PREDICT_BATCH = 1024  # rows a stateless model predicts at once, at most
PREDICT_BYTES = 512 << 20  # their activations, at most (long sequences get smaller batches)
HISTORY_ROW_BYTES = 320  # one epoch's row: a dict of a few floats
BYTES_PER_TRAINABLE = 16  # weight, gradient and Adam's two moments, float32


class LimitError(EchoError):
    """A config that cannot fit on this machine."""


@dataclass(frozen=True)
class Need:
    bytes: int
    key: str  # the config key behind it, e.g. "train.epochs"
    what: str  # "the per-epoch history"
    fix: str  # "lower train.epochs"


def machine_memory() -> int:
    """Physical memory, or the cgroup's limit when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def size(n: float) -> str:
    """Bytes in binary units: 512 B, 3.2 MiB, 236 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def parameters(cfg: Config) -> dict[str, int]:
    """Estimated weights by part: "input table" (frozen one-hot or learned embedding),
    "input kernels" (the first layer's weights on its inputs), "hidden kernels" (the weights
    on the units themselves) and "output" (the softmax over the symbols, or one number)."""
    sig, m = cfg.signature, cfg.model
    n = sig.symbols
    width = sig.features if n is None else (n if m.encoding == "onehot" else m.embedding_dim)
    size = cfg.kind.size(m, width, sig.steps)
    outputs = sig.outputs or 1
    return {"input table": 0 if n is None else (n + 1) * width,
            "input kernels": size.input_kernels, "hidden kernels": size.hidden_kernels,
            "output": m.units * outputs + outputs}


def eval_chunk(cfg: Config, sequences: int) -> int:
    """Held-out sequences to predict side by side: at most EVAL_CHUNK, fewer for long ones."""
    return max(1, min(EVAL_CHUNK, sequences, CHUNK_BYTES // max(cfg.task.size(cfg).prediction,
                                                                 1)))


def predict_batch(cfg: Config) -> int:
    """Rows a stateless model predicts at once: PREDICT_BATCH, fewer where one row's
    activations are large (eval.lengths at 4,096 steps through a selective scan, say)."""
    sig, m = cfg.signature, cfg.model
    width = (sig.features if sig.symbols is None
             else sig.symbols if m.encoding == "onehot" else m.embedding_dim)
    layers = cfg.kind.size(m, width, sig.steps).layers
    row = sig.steps * (width + layers * m.units) * 4
    return max(1, min(PREDICT_BATCH, PREDICT_BYTES // max(row, 1)))


def needs(cfg: Config) -> list[Need]:
    """What a training run holds at once, part by part."""
    m, t, e = cfg.model, cfg.train, cfg.eval
    sig, size = cfg.signature, cfg.task.size(cfg)
    n, steps = sig.outputs or 1, sig.steps
    per_target = steps if sig.per_step else 1
    params = parameters(cfg)
    symbols = sig.symbols or 1
    width_key = ("data.n_unique" if m.encoding == "onehot" or symbols >= m.embedding_dim
                 else "model.embedding_dim")
    table_fix = ("use model.encoding: embedding or lower data.n_unique" if m.encoding == "onehot"
                 else f"lower {width_key}")
    table_bytes = params["input table"] * (4 if m.encoding == "onehot" else BYTES_PER_TRAINABLE)
    width = symbols if m.encoding == "onehot" else m.embedding_dim
    layers = cfg.kind.size(m, width, steps).layers
    activations = (t.batch_size * steps * (width + layers * m.units) * 4 * 3
                   + t.batch_size * per_target * n * 4 * 3)
    targets = t.target_accuracy is not None or t.target_loss is not None
    # train.seeds: every other seed holds its own weights, Adam state, data and activations
    one_seed = (sum(params.values()) * BYTES_PER_TRAINABLE + block_sequences(cfg) * size.sequence
                + activations)
    return [
        Need((t.seeds - 1) * one_seed, "train.seeds",
             "the other seeds' weights, training data and activations", "lower train.seeds"),
        Need(table_bytes, width_key, "the input table", table_fix),
        Need(params["input kernels"] * BYTES_PER_TRAINABLE,
             "model.embedding_dim" if m.encoding == "embedding" else "data.n_unique",
             f"the {m.kind} weights on its inputs, with their gradients and Adam state",
             f"lower it or model.units ({m.units})"),
        Need(params["hidden kernels"] * BYTES_PER_TRAINABLE, "model.units",
             f"the {m.kind} weights on its units, with their gradients and Adam state",
             "lower model.units"),
        Need(params["output"] * BYTES_PER_TRAINABLE, "data.n_unique", "the output layer",
             "lower data.n_unique"),
        Need(block_sequences(cfg) * size.sequence, size.length_key,
             "one block of training data", size.shorter),
        Need(activations, "train.batch_size", "one batch's activations",
             f"lower train.batch_size or {size.length_key}"),
        Need(e.sequences * size.heldout, "eval.sequences",
             f"the held-out sequences, {size.heldout:,} bytes each",
             f"lower eval.sequences or {size.length_key}"),
        Need(e.validation_sequences * size.prediction if targets else 0,
             "eval.validation_sequences", "the validation sequences",
             "lower eval.validation_sequences"),
        Need(eval_chunk(cfg, e.sequences) * size.prediction, size.length_key,
             "one chunk of held-out predictions", size.shorter),
        Need(t.epochs * HISTORY_ROW_BYTES, "train.epochs", "the per-epoch history",
             "lower train.epochs"),
        Need(size.reading, "data.path", "the data file as pandas reads it (about 8 times its "
                                        "size)", "use a smaller file"),
    ]


def _setting(cfg: Config | None, key: str) -> str:
    """`key=value` for a config key, the key alone otherwise (an option such as --heldout)."""
    if cfg is None or "." not in key:
        return key
    section, name = key.split(".")
    return f"{key}={getattr(getattr(cfg, section), name)}"


def refuse_if_too_big(parts: list[Need], cfg: Config | None) -> None:
    """Raise LimitError naming the largest part when the total cannot fit in memory."""
    total = sum(p.bytes for p in parts) + RUNTIME_BYTES
    memory = machine_memory()
    if total <= memory:
        return
    worst = max(parts, key=lambda p: p.bytes)
    raise LimitError(f"{_setting(cfg, worst.key)} needs about {size(worst.bytes)} for "
                     f"{worst.what} (about {size(total)} in all); this machine has "
                     f"{size(memory)}; {worst.fix}")


def workers_that_fit(cfgs: list[Config], workers: int) -> tuple[int, str | None]:
    """How many of a sweep's runs fit side by side: `workers`, or fewer when the largest run
    (with its runtime) times `workers` is more than this machine's memory; and a line saying so.
    """
    if not cfgs:
        return workers, None
    per_run = max(sum(p.bytes for p in needs(cfg)) for cfg in cfgs) + RUNTIME_BYTES
    memory = machine_memory()
    fit = max(1, memory // per_run)
    if workers <= fit:
        return workers, None
    return fit, (f"--workers {workers} would hold about {size(per_run * workers)} at once (a "
                 f"run needs about {size(per_run)}); this machine has {size(memory)}, so the "
                 f"sweep runs {fit} at a time")


def check(cfg: Config) -> None:
    """Refuse, before anything is created, a config that cannot fit in this machine's memory.

    Raises:
        LimitError: one line naming the key, the estimate, the memory and the fix.
    """
    refuse_if_too_big(needs(cfg), cfg)


def check_sample(cfg: Config) -> None:
    """For check-data: one sequence, which is all it builds."""
    size = cfg.task.size(cfg)
    refuse_if_too_big([Need(size.sequence, size.length_key, "one sequence", size.shorter)], cfg)


def check_stream(cfg: Config, sequences: int) -> None:
    """For `stream --heldout N`: N sequences side by side, each with its state and outputs."""
    sig = cfg.signature
    per = cfg.task.size(cfg).heldout + (4 * cfg.model.units + 2 * (sig.outputs or 1)) * 4
    refuse_if_too_big([Need(sequences * per, f"--heldout {sequences}",
                            "the sequences side by side", "give a smaller --heldout")], None)


def block_sequences(cfg: Config) -> int:
    """Training sequences generated and framed at once: as many as fit in CHUNK_BYTES."""
    return max(1, min(cfg.train.epochs, CHUNK_BYTES // max(cfg.task.size(cfg).sequence, 1)))


def chunk_sequences(cfg: Config) -> int:
    """Training sequences to frame at once: at most MAX_CHUNK, fewer for long sequences."""
    return max(1, min(MAX_CHUNK, cfg.train.epochs,
                      CHUNK_BYTES // max(cfg.task.size(cfg).sequence, 1)))

