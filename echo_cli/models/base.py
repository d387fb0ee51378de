"""What a model kind is, and what a task asks of a model: the two contracts of this layer.

    sig = Signature(steps=5, symbols=100, outputs=100, per_step=False)   # the echo's
    LSTM = Kind("lstm", build=..., recurrent=True, stateful=True, per_step=True, ...)

A task describes its inputs and outputs as a Signature (ids or numbers in; a softmax or one
number out; one output per sample or per step); a kind turns the encoded inputs into features
for the output layer. A kind never sees the task, and a task never names a kind: the checks
between them read the kind's properties. This module imports no Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MISSING = -1  # a task's id for a step before the sequence starts, or an unscored target


@dataclass(frozen=True)
class Signature:
    """What a task feeds a model and what it wants back.

    steps: timesteps per sample (None: any length, for a model evaluated at other lengths).
    symbols: inputs are ids 0 .. symbols-1 (None: `features` numbers per step).
    outputs: classes of a softmax (None: one number, a regression).
    per_step: an output at every step, else one per sample.
    mask: missing steps (id MISSING) are skipped by a Masking layer.
    """

    steps: int | None
    symbols: int | None
    outputs: int | None
    per_step: bool
    features: int = 0
    mask: bool = False


def model_ids(ids: np.ndarray) -> np.ndarray:
    """A task's ids (MISSING = -1) as the model reads them (0 = missing), int32."""
    return (np.asarray(ids) + 1).astype(np.int32)


@dataclass(frozen=True)
class Size:
    """A kind's weights estimated before it is built, for the memory check (config/limits.py):
    on its inputs, on its own units, and how many layers' activations a batch keeps."""

    input_kernels: int
    hidden_kernels: int
    layers: int = 8


Builder = Callable[[Any, Any, Signature], Any]  # (encoded inputs, model section, sig) -> features


@dataclass(frozen=True)
class Kind:
    """One model.kind: its builder and the properties every check reads.

    build(h, model, sig): Keras features for the output layer, from the encoded inputs h;
        `model` is the config's model section.
    recurrent: it carries a state from step to step.
    stateful: it can carry that state from batch to batch (model.stateful: true).
    per_step: it can give an output at every step.
    masking: it skips masked steps (data.missing: mask).
    body: the name of the layer that holds model.units, to check a saved model against its
        config.
    cell: the step `inspect` recomputes in numpy (models/cells.py), or None.
    keys: the model keys it reads beyond kind, units, encoding, embedding_dim and stateful:
        name -> (type, pydantic Field with its default and description). Kinds that share a
        key declare the same one.
    size(model, width, steps): its weights, estimated (Size).
    receptive_field(model, steps): steps each output sees back, where it is bounded.
    variables: how its own weights are drawn from the seed (name -> draw(rng, shape,
        model_section)), trainable or fixed (a reservoir), beside the Glorot, orthogonal and
        embedding draws every kind shares (models/factory.py).
    layers: its own Keras layer classes, made and registered on first call, so that a saved
        model holding them loads in safe mode (None: it uses Keras's own layers).
    check(model_section): why these model keys cannot run with this kind, or None.
    """

    name: str
    summary: str
    build: Builder
    size: Callable[[Any, int, int], Size]
    recurrent: bool = False
    stateful: bool = False
    per_step: bool = True
    masking: bool = False
    body: str = ""
    cell: str | None = None
    keys: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    receptive_field: Callable[[Any, int], int] | None = None
    variables: dict[str, Callable[..., np.ndarray]] = field(default_factory=dict)
    layers: Callable[[], Any] | None = None
    check: Callable[[Any], str | None] | None = None


def last_step(h, sig: Signature):
    """Every step's features, for outputs per step; else the last step's only."""
    from keras import layers

    if sig.per_step:
        return h
    return layers.Flatten(name="flatten")(
        layers.Cropping1D((sig.steps - 1, 0), name="last_step")(h))
