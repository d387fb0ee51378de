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

from echo_cli.config.loading import Config
from echo_cli.errors import EchoError
from echo_cli.tasks.framing import candidate_rows, timesteps

RUNTIME_BYTES = 1 << 30  # Python, TensorFlow or JAX, and Keras themselves
CHUNK_BYTES = 256 << 20  # training data framed at once
MAX_CHUNK = 50  # sequences per compiled chunk (or Keras epoch)
EVAL_CHUNK = 200  # held-out sequences predicted side by side
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


def _levels(steps: int, kernel: int, convs: int) -> int:
    """Convolution levels with dilations 1, 2, 4, ... until 1 + convs·(kernel-1)·(sum of the
    dilations) covers the steps (conv1d: kernel 2, one conv a level; tcn: two a level)."""
    levels, dilation, total = 1, 1, 1
    while 1 + convs * (kernel - 1) * total < steps:
        dilation *= 2
        total += dilation
        levels += 1
    return levels


def parameters(cfg: Config) -> dict[str, int]:
    """Estimated weights by part: "input table" (frozen one-hot or learned embedding),
    "input kernels" (the first layer's weights on its inputs), "hidden kernels" (the weights
    on the units themselves) and "output" (the softmax over the symbols, or one number)."""
    n, u, steps, kind = cfg.n_symbols, cfg.model.units, cfg.steps, cfg.model.kind
    d = 2 if n is None else (n if cfg.model.encoding == "onehot" else cfg.model.embedding_dim)
    k = cfg.model.kernel_size
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}.get(kind, 1)
    inputs = {"mlp": steps * d * u, "conv1d": 2 * d * u, "tcn": k * d * u + d * u}.get(
        kind, gates * d * u)
    levels = {"conv1d": _levels(steps, 2, 1), "tcn": _levels(steps, k, 2)}.get(kind, 1)
    hidden = {"mlp": u, "conv1d": u + (levels - 1) * (2 * u * u + u),
              "tcn": levels * (2 * k * u * u) - k * u * u}.get(
        kind, gates * (u * u + (2 if kind == "gru" else 1) * u))
    table = 0 if n is None else (n + 1) * d
    return {"input table": table, "input kernels": inputs, "hidden kernels": hidden,
            "output": u * (n or 1) + (n or 1)}


def _sequence_bytes(cfg: Config) -> int:
    """One epoch's data as numpy builds it and the model reads it: an echo sequence framed
    (ids, targets, weights), or a batch of memory-task sequences."""
    if cfg.data.task != "echo":
        return cfg.train.batch_size * cfg.steps * 32
    steps, rows = timesteps(cfg.framing), max(candidate_rows(cfg.framing), 1)
    per_target = steps if cfg.data.target == "sequence" else 1
    return rows * steps * 12 + rows * per_target * 16 + cfg.data.length * 8


def _prediction_bytes(cfg: Config) -> int:
    """One held-out sequence's predictions, with the data they came from."""
    if cfg.data.task != "echo":
        per_step = cfg.steps if cfg.per_step_output else 1
        return per_step * (cfg.n_symbols or 1) * 4 * 2 + cfg.steps * 32
    steps, rows = timesteps(cfg.framing), max(candidate_rows(cfg.framing), 1)
    per_target = steps if cfg.data.target == "sequence" else 1
    return rows * per_target * cfg.data.n_unique * 4 * 2 + _sequence_bytes(cfg)


def eval_chunk(cfg: Config, sequences: int) -> int:
    """Held-out sequences to predict side by side: at most EVAL_CHUNK, fewer for long ones."""
    return max(1, min(EVAL_CHUNK, sequences, CHUNK_BYTES // max(_prediction_bytes(cfg), 1)))


def needs(cfg: Config) -> list[Need]:
    """What a training run holds at once, part by part."""
    d, m, t, e = cfg.data, cfg.model, cfg.train, cfg.eval
    n, steps = cfg.n_symbols or 1, cfg.steps
    per_target = steps if cfg.per_step_output else 1
    params = parameters(cfg)
    width_key = ("data.n_unique" if m.encoding == "onehot" or n >= m.embedding_dim
                 else "model.embedding_dim")
    table_fix = ("use model.encoding: embedding or lower data.n_unique" if m.encoding == "onehot"
                 else f"lower {width_key}")
    table_bytes = params["input table"] * (4 if m.encoding == "onehot" else BYTES_PER_TRAINABLE)
    width = n if m.encoding == "onehot" else m.embedding_dim
    layers = {"tcn": 2 * _levels(steps, m.kernel_size, 2), "conv1d": _levels(steps, 2, 1)}.get(
        m.kind, 8)
    activations = (t.batch_size * steps * (width + layers * m.units) * 4 * 3
                   + t.batch_size * per_target * n * 4 * 3)
    longer = {"copy": "lower data.delay", "adding": "lower data.length"}.get(
        d.task, "lower data.length" + (" or use data.context: window" if d.context == "full"
                                       else ""))
    length_key = {"copy": "data.delay"}.get(d.task, "data.length")
    targets = t.target_accuracy is not None or t.target_loss is not None
    return [
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
        Need(block_sequences(cfg) * _sequence_bytes(cfg), length_key,
             "one block of training data", longer),
        Need(activations, "train.batch_size", "one batch's activations",
             f"lower train.batch_size or {length_key}"),
        Need(e.sequences * d.length * 8 if d.task == "echo" else 0, "eval.sequences",
             f"the held-out sequences of {d.length} integers each",
             "lower eval.sequences or data.length"),
        Need(e.validation_sequences * _prediction_bytes(cfg) if targets else 0,
             "eval.validation_sequences", "the validation sequences",
             "lower eval.validation_sequences"),
        Need(eval_chunk(cfg, e.sequences) * _prediction_bytes(cfg), length_key,
             "one chunk of held-out predictions", longer),
        Need(t.epochs * HISTORY_ROW_BYTES, "train.epochs", "the per-epoch history",
             "lower train.epochs"),
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


def check(cfg: Config) -> None:
    """Refuse, before anything is created, a config that cannot fit in this machine's memory.

    Raises:
        LimitError: one line naming the key, the estimate, the memory and the fix.
    """
    refuse_if_too_big(needs(cfg), cfg)


def check_framing(cfg: Config) -> None:
    """For check-data: one sequence framed, which is all it builds."""
    refuse_if_too_big([Need(_sequence_bytes(cfg), "data.length", "one framed sequence",
                            "lower data.length")], cfg)


def check_stream(cfg: Config, sequences: int) -> None:
    """For `stream --heldout N`: N sequences side by side, each with its state and outputs."""
    per = cfg.data.length * 8 + (4 * cfg.model.units + 2 * cfg.data.n_unique) * 4
    refuse_if_too_big([Need(sequences * per, f"--heldout {sequences}",
                            "the sequences side by side", "give a smaller --heldout")], None)


def block_sequences(cfg: Config) -> int:
    """Training sequences generated and framed at once: as many as fit in CHUNK_BYTES."""
    return max(1, min(cfg.train.epochs, CHUNK_BYTES // max(_sequence_bytes(cfg), 1)))


def chunk_sequences(cfg: Config) -> int:
    """Training sequences to frame at once: at most MAX_CHUNK, fewer for long sequences."""
    return max(1, min(MAX_CHUNK, cfg.train.epochs, CHUNK_BYTES // max(_sequence_bytes(cfg), 1)))

