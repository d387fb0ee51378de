"""The feedforward kind: the input flattened into one vector, then a hidden layer.

    features = MLP.build(h, cfg.model, sig)      # (batch, units)

It has no order and no state, so it is the control for the question "does an LSTM do better
than an MLP would?"; it gives one output per sample, never one per step.
"""

from __future__ import annotations

from echo_cli.models.base import Kind, Signature, Size


def _build(h, model, sig: Signature):
    from keras import layers

    return layers.Dense(model.units, activation="relu", name="hidden")(
        layers.Flatten(name="flatten")(h))


def _size(model, width: int, steps: int) -> Size:
    return Size(input_kernels=steps * width * model.units, hidden_kernels=model.units)


MLP = Kind(name="mlp", summary="the window flattened into one vector, then a ReLU layer: no "
                               "order, no state", build=_build, size=_size, per_step=False,
           body="hidden")
