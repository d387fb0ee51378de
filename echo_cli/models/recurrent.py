"""The recurrent kinds: Keras's LSTM, GRU and SimpleRNN, each carrying a state step to step.

    features = LSTM.build(h, cfg.model, sig)     # (batch, units), or (batch, steps, units)

Short sequences are unrolled (faster than a symbolic loop up to about 32 steps). Each can be
stateful (the state carried from batch to batch, as the tutorial does), can skip masked steps,
and can give an output per step. `inspect` recomputes their steps in numpy (cells.py).
"""

from __future__ import annotations

from echo_cli.models.base import Kind, Signature, Size

UNROLL_UP_TO = 32  # unrolled short windows run faster than a symbolic loop


def _builder(layer_name: str, kind: str):
    def build(h, model, sig: Signature):
        from keras import layers

        layer = getattr(layers, layer_name)
        return layer(model.units, stateful=model.stateful, return_sequences=sig.per_step,
                     unroll=sig.steps is not None and sig.steps <= UNROLL_UP_TO, name=kind)(h)

    return build


def _size(gates: int, biases: int):
    def size(model, width: int, steps: int) -> Size:
        u = model.units
        return Size(input_kernels=gates * width * u, hidden_kernels=gates * (u * u + biases * u))

    return size


def _recurrent(name: str, layer: str, gates: int, biases: int, summary: str) -> Kind:
    return Kind(name=name, summary=summary, build=_builder(layer, name), size=_size(gates, biases),
                recurrent=True, stateful=True, per_step=True, masking=True, body=name, cell=name)


LSTM = _recurrent("lstm", "LSTM", 4, 1, "a long short-term memory layer: a cell state and "
                                         "input, forget and output gates")
GRU = _recurrent("gru", "GRU", 3, 2, "a gated recurrent unit: update and reset gates")
SIMPLE_RNN = _recurrent("simple_rnn", "SimpleRNN", 1, 1, "a plain tanh recurrent layer")
