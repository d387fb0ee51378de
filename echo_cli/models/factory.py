"""The model factory: a task's signature and a kind's builder make one Keras model.

    model = build_model(sig, cfg.model, seed=cfg.seed, batch_size=5)
    compile_model(model, loss="sparse_categorical_crossentropy", metrics={...},
                  learning_rate=0.001, clipnorm=None)

Ids come in shifted by one (base.model_ids), so that 0 marks a missing step. A frozen identity
`Embedding` turns them into the tutorial's one-hot vectors (a missing step is all zeros) inside
the model, which keeps the training data small and the saved model self-contained. Every weight
is drawn with numpy from the seed, so every backend starts from the same weights.
"""

from __future__ import annotations

import numpy as np

from echo_cli import models
from echo_cli.models.base import Signature
from echo_cli.models.keras_internals import stateful_layers

INIT_STREAM = 3  # the seed stream of initial weights (tasks.base.STREAMS["init"])


def build_model(sig: Signature, model_section, *, seed: int, batch_size: int | None = None):
    """Build a model for `sig` with the config's model section, uncompiled.

    Args:
        sig: what the task feeds the model and wants back.
        model_section: the config's `model` section (kind, units, encoding, stateful, ...).
        seed: the config's seed; the weights are drawn from its "init" stream.
        batch_size: the fixed batch of a stateful model (ignored when stateless).

    Returns:
        A keras.Model: (batch, steps) int32 ids (0 = missing), or (batch, steps, features)
        numbers, to (batch, outputs) probabilities or (batch, 1) numbers, with a steps axis
        before the last when sig.per_step.
    """
    import keras
    from keras import layers

    m = model_section
    batch = batch_size if m.stateful else None
    if sig.symbols is None:  # numbers in, such as the adding problem's value and marker
        inputs = keras.Input(batch_shape=(batch, sig.steps, sig.features), dtype="float32",
                             name="numbers")
        h = inputs
    else:
        inputs = keras.Input(batch_shape=(batch, sig.steps), dtype="int32", name="ids")
        h = _encode(inputs, sig, m)
    h = models.get(m.kind).build(h, m, sig)
    if sig.outputs is None:
        outputs = layers.Dense(1, name="sum")(h)
    else:
        outputs = layers.Dense(sig.outputs, activation="softmax", name="echo")(h)
    model = keras.Model(inputs, outputs, name="echo")  # not the user's name: any name works
    if sig.symbols is not None and m.encoding == "onehot":
        n = sig.symbols
        model.get_layer("one_hot").set_weights(
            [np.vstack([np.zeros((1, n)), np.eye(n)]).astype("float32")])
    _init_weights(model, models.get(m.kind).variables, m,
                  np.random.default_rng([seed, INIT_STREAM]))
    return model


def _encode(inputs, sig: Signature, m):
    """Ids to vectors: the frozen one-hot table, or a learned embedding; id 0 (a missing step)
    is all zeros, masked where the signature asks."""
    from keras import layers

    n = sig.symbols
    if m.encoding == "onehot":
        h = layers.Embedding(n + 1, n, trainable=False, name="one_hot")(inputs)
        return layers.Masking(mask_value=0.0, name="mask")(h) if sig.mask else h
    # learned vectors; id 0 (a missing step) is masked or learns a marker of its own
    return layers.Embedding(n + 1, m.embedding_dim, name="embedding", mask_zero=sig.mask)(inputs)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype("float32")


def orthogonal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))
    return (q.T if rows < cols else q).reshape(shape).astype("float32")


def _embedding(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(-0.05, 0.05, shape).astype("float32")


SHARED = {"recurrent_kernel": orthogonal, "kernel": glorot_uniform, "embeddings": _embedding}


def _init_weights(model, own: dict, model_section, rng: np.random.Generator) -> None:
    """Keras's default initializers (Glorot uniform kernels, orthogonal recurrent kernels,
    uniform ±0.05 embeddings) and the kind's own draws, in the model's variable order, all from
    one numpy stream of the seed: the trainable variables, then the kind's fixed ones (an echo
    state network's reservoir). A kind's own draw reads its model keys, draw(rng, shape,
    model_section): a reservoir's spectral radius, an LRU's ring. Other variables (biases: an
    LSTM's forget gate starts at 1; the frozen one-hot table) keep their values."""
    for variable in [*model.trainable_variables, *model.non_trainable_variables]:
        name, shape = variable.path.split("/")[-1], tuple(variable.shape)
        if name in own:
            variable.assign(own[name](rng, shape, model_section))
        elif name in SHARED and variable.trainable:
            variable.assign(SHARED[name](rng, shape))


def draw_weights(model, model_section, *, seed: int) -> None:
    """Draw the seed's initial weights into a model that build_model made and nothing has
    trained yet: afterwards it holds exactly what build_model(seed=seed) would have built (the
    weights that are not drawn do not depend on the seed). train.seeds draws every seed's this
    way into one model instead of building one model per seed."""
    _init_weights(model, models.get(model_section.kind).variables, model_section,
                  np.random.default_rng([seed, INIT_STREAM]))


def compile_model(model, *, loss: str, metrics: dict, learning_rate: float,
                  clipnorm: float | None, steps_per_execution: int = 1) -> None:
    """Adam, its global gradient norm clipped to `clipnorm` if set, on the task's loss and
    accuracy metric (metrics: compile's metrics or weighted_metrics keyword)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=clipnorm),
        loss=loss, steps_per_execution=steps_per_execution, **metrics)


def reset_states(model) -> None:
    """Zero every stateful layer's state (Keras 3 has no model.reset_states)."""
    for layer in stateful_layers(model):
        layer.reset_state()


def with_batch(model, sig: Signature, model_section, *, seed: int, batch_size: int):
    """The same weights in a model built for another fixed batch size (stateful inference)."""
    clone = build_model(sig, model_section, seed=seed, batch_size=batch_size)
    clone.set_weights(model.get_weights())
    return clone


def size(model) -> dict[str, int]:
    """Trainable parameters, the frozen ones (the one-hot table, a fixed reservoir), and
    multiply-adds per sample of a forward pass.

    Each kernel costs its size once per position it is applied at: every timestep for a
    recurrent layer (input and recurrent kernels) or a per-timestep Dense or Conv1D; lookups
    (the one-hot table, embeddings) cost none.
    """
    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    frozen = int(sum(np.prod(v.shape) for v in model.non_trainable_weights))
    macs = 0
    for layer in model.layers:
        weights = {w.path.split("/")[-1]: int(np.prod(w.shape)) for w in layer.weights}
        if "recurrent_kernel" in weights:
            inputs = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
            macs += inputs.shape[1] * (weights["kernel"] + weights["recurrent_kernel"])
        elif "kernel" in weights:
            macs += int(np.prod(layer.output.shape[1:-1])) * weights["kernel"]
    return {"parameters": params, "frozen_parameters": frozen,
            "multiply_adds_per_sample": int(macs)}
