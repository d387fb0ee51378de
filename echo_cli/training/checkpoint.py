"""Checkpoints: a run's training state saved as it goes, so a killed run continues where it
left off instead of starting again from zero.

    keeper = Keeper(path, cfg, engine="fast", digest=digest)   # the loop calls keeper.due/save
    saved = load(path, cfg, engine="fast", digest=digest)     # `train --resume RUN`
    saved.restore(model)                                      # after compiling

RUN/checkpoint.npz holds, written whole or not at all: the model's weights, its non-trainable
variables (the frozen tables and the layers' random seeds), the optimizer's state (Adam's step
count and moments), the epoch, the history so far, the epoch the target was first reached and
the training seconds spent. The training data needs no saved state: every epoch's sequences
come from the seed's own stream, so a resumed run draws them again and skips the epochs done.
A checkpoint falls on a chunk boundary (the loop's compiled groups of epochs), where the
weights are those of the last epoch recorded; so a resumed run makes the same updates, in the
same groups, as one that was never stopped.

train.checkpoint_every: null (the default) saves one a minute, so runs shorter than that never
write one; N saves every N epochs (at the first chunk boundary on or after); 0 never saves.
A finished run removes its checkpoint: model.keras holds the result.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from echo_cli import __version__
from echo_cli.config.schema import Config
from echo_cli.errors import EchoError
from echo_cli.store import rundir
from echo_cli.store.files import describe, write_atomic

AUTO_SECONDS = 60.0  # train.checkpoint_every: null saves this often
GROUPS = ("trainable", "non_trainable", "optimizer")


class CheckpointError(EchoError):
    """A checkpoint that cannot be used to resume this run."""


def _variables(model) -> dict[str, list]:
    return {"trainable": list(model.trainable_variables),
            "non_trainable": list(model.non_trainable_variables),
            "optimizer": list(model.optimizer.variables) if model.optimizer else []}


@dataclass
class Saved:
    """A checkpoint read back: where training stands, and the arrays to restore."""

    epoch: int
    history: list[dict[str, float]]
    target_epoch: int | None
    train_seconds: float
    arrays: dict[str, list[np.ndarray]]

    def restore(self, model) -> None:
        """Put the saved weights, variables and optimizer state into a compiled model.

        Raises:
            CheckpointError: a variable whose shape differs (another model).
        """
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for group, variables in _variables(model).items():
            values = self.arrays[group]
            if len(values) != len(variables):
                raise CheckpointError(f"the checkpoint holds {len(values)} {group} variables "
                                      f"and the model {len(variables)}; train afresh")
            for variable, value in zip(variables, values, strict=True):
                if tuple(variable.shape) != value.shape:
                    raise CheckpointError(f"the checkpoint's {variable.path} is {value.shape}, "
                                          f"the model's {tuple(variable.shape)}; train afresh")
                variable.assign(value)


class Keeper:
    """Saves checkpoints into a run directory as the loop reaches chunk boundaries."""

    def __init__(self, path: Path, cfg: Config, *, engine: str, digest: str):
        self.file = path / rundir.CHECKPOINT
        self.every = cfg.train.checkpoint_every
        self.meta = {"version": __version__, "config_sha256": digest, "engine": engine,
                     "backend": cfg.train.backend}
        self.last_epoch, self.last_time = 0, time.monotonic()

    def due(self, epoch: int) -> bool:
        if self.every is None:
            return time.monotonic() - self.last_time >= AUTO_SECONDS
        return self.every > 0 and epoch - self.last_epoch >= self.every

    def save(self, model, *, epoch: int, history: list[dict[str, float]],
             target_epoch: int | None, train_seconds: float) -> None:
        """Write RUN/checkpoint.npz whole (a temporary file renamed into place).

        Raises:
            OSError: it could not be written (the previous checkpoint stands).
        """
        arrays = {f"{group}_{i}": np.asarray(v.numpy() if hasattr(v, "numpy") else v)
                  for group, variables in _variables(model).items()
                  for i, v in enumerate(variables)}
        meta = {**self.meta, "epoch": epoch, "history": history, "target_epoch": target_epoch,
                "train_seconds": train_seconds,
                "counts": {g: len(v) for g, v in _variables(model).items()}}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
        write_atomic(self.file, buffer.getvalue())
        self.last_epoch, self.last_time = epoch, time.monotonic()

    def remove(self) -> None:
        self.file.unlink(missing_ok=True)


def exists(path: Path) -> bool:
    return (path / rundir.CHECKPOINT).is_file()


def load(path: Path, *, engine: str, digest: str) -> Saved:
    """The run's checkpoint, checked against the config and the echo-cli resuming it.

    Raises:
        CheckpointError: none, unreadable, or made by another config, engine or version.
    """
    file = path / rundir.CHECKPOINT
    if not file.is_file():
        raise CheckpointError(f"{path} has no {rundir.CHECKPOINT} to resume from (a run saves "
                              f"one as it trains when train.checkpoint_every is set, or once "
                              f"a minute by default); train it afresh with a new --out")
    try:
        with np.load(file, allow_pickle=False) as data:
            meta: dict[str, Any] = json.loads(str(data["meta"]))
            arrays = {g: [data[f"{g}_{i}"] for i in range(meta["counts"][g])] for g in GROUPS}
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{file} cannot be read ({describe(err, file)}); train the run "
                              f"afresh with a new --out") from None
    if meta.get("version") != __version__:
        raise CheckpointError(f"{file} was written by echo-cli {meta.get('version')}, and this "
                              f"is {__version__}; resume it with that version, or train afresh")
    if meta.get("config_sha256") != digest:
        raise CheckpointError(f"{file} was made with another config than {path}/"
                              f"{rundir.CONFIG}; resume with the config it was made with, or "
                              f"train afresh with a new --out")
    if meta.get("engine") != engine:
        raise CheckpointError(f"{file} was made by the {meta.get('engine')} engine; resume "
                              f"with --engine {meta.get('engine')}")
    return Saved(epoch=meta["epoch"], history=meta["history"],
                 target_epoch=meta.get("target_epoch"), train_seconds=meta["train_seconds"],
                 arrays=arrays)
