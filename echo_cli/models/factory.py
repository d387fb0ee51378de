"""The model factory: ids in, a softmax over the n_unique integers out.

    model = build_model(cfg)                  # batch size from cfg when stateful
    compile_model(model, cfg)
    model.predict(model_input(framed.x[0]))

Inputs are integer ids shifted by one, so that 0 marks a missing step. A frozen identity
`Embedding` turns them into the tutorial's one-hot vectors (a missing step is all zeros)
inside the model, which keeps the training data small and the saved model self-contained.
"""

from __future__ import annotations

import numpy as np

from echo_cli.config.loading import Config
from echo_cli.models.keras_internals import stateful_layers
from echo_cli.tasks import TOLERANCE
from echo_cli.tasks.framing import STREAMS

_UNROLL_UP_TO = 32  # unrolled short windows run faster than a symbolic loop


def model_input(x: np.ndarray) -> np.ndarray:
    """Framed ids (MISSING = -1) to model ids (0 = missing), int32."""
    return (np.asarray(x) + 1).astype(np.int32)


def build_model(cfg: Config, *, batch_size: int | None = None):
    """Build the config's model, uncompiled.

    Args:
        cfg: a validated config.
        batch_size: the fixed batch of a stateful model; defaults to train.batch_size.

    Returns:
        A keras.Model. For symbols (echo, copy): (batch, steps) int32 ids (0 = missing) to
        (batch, n) probabilities, or (batch, steps, n) with an output per step. For the adding
        problem: (batch, steps, 2) numbers to (batch, 1).
    """
    import keras
    from keras import layers

    n, steps = cfg.n_symbols, cfg.steps
    batch = (batch_size or cfg.train.batch_size) if cfg.model.stateful else None
    if n is None:  # the adding problem: a value and a marker per step
        inputs = keras.Input(batch_shape=(batch, steps, 2), dtype="float32", name="numbers")
        h = inputs
    else:
        inputs = keras.Input(batch_shape=(batch, steps), dtype="int32", name="ids")
        mask = cfg.data.task == "echo" and cfg.data.missing == "mask"
        if cfg.model.encoding == "onehot":
            one_hot = layers.Embedding(n + 1, n, trainable=False, name="one_hot")
            h = one_hot(inputs)
            if mask:
                h = layers.Masking(mask_value=0.0, name="mask")(h)
        else:  # learned vectors; id 0 (a missing step) is masked or learns a marker of its own
            h = layers.Embedding(n + 1, cfg.model.embedding_dim, name="embedding",
                                 mask_zero=mask)(inputs)
    h = BUILDERS[cfg.model.kind](h, cfg, steps)
    if n is None:
        outputs = layers.Dense(1, name="sum")(h)
    else:
        outputs = layers.Dense(n, activation="softmax", name="echo")(h)
    model = keras.Model(inputs, outputs, name="echo")  # not the user's name: any name works
    if n is not None and cfg.model.encoding == "onehot":
        one_hot.set_weights([np.vstack([np.zeros((1, n)), np.eye(n)]).astype("float32")])
    _init_weights(model, np.random.default_rng([cfg.seed, STREAMS["init"]]))
    return model


# ---------------------------------------------------------------------------------------------
# one builder per model.kind: (encoded inputs, cfg, timesteps) -> features for the output Dense


def _recurrent(layer_name: str):
    def build(h, cfg: Config, steps: int):
        from keras import layers

        layer = getattr(layers, layer_name)
        return layer(cfg.model.units, stateful=cfg.model.stateful,
                     return_sequences=cfg.per_step_output,
                     unroll=steps <= _UNROLL_UP_TO, name=cfg.model.kind)(h)

    return build


def _mlp(h, cfg: Config, steps: int):
    """The input flattened into one vector, then a hidden layer: no order, no state."""
    from keras import layers

    return layers.Dense(cfg.model.units, activation="relu", name="hidden")(
        layers.Flatten(name="flatten")(h))


def _last_step(h, cfg: Config, steps: int):
    """Every step, for outputs per step; else the last step only."""
    from keras import layers

    if cfg.per_step_output:
        return h
    return layers.Flatten(name="flatten")(layers.Cropping1D((steps - 1, 0), name="last_step")(h))


def conv_dilations(steps: int) -> list[int]:
    """Dilations 1, 2, 4, ... of kernel-2 causal convolutions until the receptive field
    (1 + sum of dilations) covers the window."""
    dilations = [1]
    while 1 + sum(dilations) < steps:
        dilations.append(dilations[-1] * 2)
    return dilations


def _conv1d(h, cfg: Config, steps: int):
    """Causal dilated convolutions whose receptive field covers the window; the last step
    (or every step, for outputs per step) feeds the output."""
    from keras import layers

    for i, dilation in enumerate(conv_dilations(steps)):
        h = layers.Conv1D(cfg.model.units, 2, dilation_rate=dilation, padding="causal",
                          activation="relu", name=f"conv{i + 1}")(h)
    return _last_step(h, cfg, steps)


def tcn_dilations(steps: int, kernel: int) -> list[int]:
    """Dilations 1, 2, 4, ... of TCN blocks (two convolutions each) until the receptive field,
    1 + 2·(kernel - 1)·(sum of dilations), covers every step."""
    dilations = [1]
    while 1 + 2 * (kernel - 1) * sum(dilations) < steps:
        dilations.append(dilations[-1] * 2)
    return dilations


def receptive_field(cfg: Config) -> int | None:
    """Steps a convolutional model sees back from each output (None for the other kinds)."""
    if cfg.model.kind == "tcn":
        return 1 + 2 * (cfg.model.kernel_size - 1) * sum(
            tcn_dilations(cfg.steps, cfg.model.kernel_size))
    if cfg.model.kind == "conv1d":
        return 1 + sum(conv_dilations(cfg.steps))
    return None


def _tcn(h, cfg: Config, steps: int):
    """A temporal convolutional network (Bai et al. 2018): residual blocks, each two dilated
    causal convolutions with ReLU, the block's input added back (through a 1x1 convolution
    where the channels differ); dilations 1, 2, 4, ... until the receptive field covers the
    sequence. No weight normalization and no dropout: the tasks here are noise-free."""
    from keras import layers

    c, k = cfg.model.units, cfg.model.kernel_size
    for i, dilation in enumerate(tcn_dilations(steps, k), start=1):
        skip = h if h.shape[-1] == c else layers.Conv1D(c, 1, name=f"tcn{i}_skip")(h)
        y = layers.Conv1D(c, k, dilation_rate=dilation, padding="causal", activation="relu",
                          name=f"tcn{i}a")(h)
        y = layers.Conv1D(c, k, dilation_rate=dilation, padding="causal", activation="relu",
                          name=f"tcn{i}b")(y)
        h = layers.Activation("relu", name=f"tcn{i}")(layers.Add(name=f"tcn{i}_add")([y, skip]))
    return _last_step(h, cfg, steps)


BUILDERS = {
    "lstm": _recurrent("LSTM"),
    "gru": _recurrent("GRU"),
    "simple_rnn": _recurrent("SimpleRNN"),
    "mlp": _mlp,
    "conv1d": _conv1d,
    "tcn": _tcn,
}
RECURRENT = ("lstm", "gru", "simple_rnn")


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype("float32")


def _orthogonal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))
    return (q.T if rows < cols else q).reshape(shape).astype("float32")


def _init_weights(model, rng: np.random.Generator) -> None:
    """Keras's default initializers (Glorot uniform kernels, orthogonal recurrent kernels,
    uniform ±0.05 embeddings), drawn with numpy from the config's seed, so that every backend
    starts from the same weights. Biases keep Keras's values (an LSTM's forget gate starts at 1).
    """
    for variable in model.trainable_variables:
        name, shape = variable.path.split("/")[-1], tuple(variable.shape)
        if name == "recurrent_kernel":
            variable.assign(_orthogonal(rng, shape))
        elif name == "kernel":
            variable.assign(_glorot_uniform(rng, shape))
        elif name == "embeddings":
            variable.assign(rng.uniform(-0.05, 0.05, shape).astype("float32"))


def compile_model(model, cfg: Config, *, steps_per_execution: int = 1) -> None:
    """Adam (its global gradient norm clipped to train.clipnorm, if set) on the task's loss:
    sparse cross-entropy for symbols, mean squared error for the adding problem; and the
    task's accuracy, named "accuracy" (see hits_function)."""
    import keras

    adding = cfg.data.task == "adding"
    metrics = {"weighted_metrics": ["accuracy"]} if cfg.data.task == "echo" else {
        "metrics": [keras.metrics.MeanMetricWrapper(_sample_hits(cfg), name="accuracy")]}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.train.learning_rate,
                                        global_clipnorm=cfg.train.clipnorm),
        loss="mean_squared_error" if adding else "sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
        **metrics,
    )


def _sample_hits(cfg: Config):
    """For Keras's metric: each sample's share of right answers (copy, adding)."""
    from keras import ops

    if cfg.data.task == "copy":
        recall = cfg.data.recall

        def recalled(y_true, y_pred):
            right = ops.argmax(y_pred[:, -recall:], axis=-1) == ops.cast(y_true[:, -recall:],
                                                                         "int32")
            return ops.mean(ops.cast(right, "float32"), axis=-1)

        return recalled

    def within(y_true, y_pred):
        return ops.cast(ops.abs(y_pred[:, 0] - ops.reshape(y_true, (-1,))) < TOLERANCE,
                        "float32")

    return within


def hits_function(cfg: Config):
    """hits(y_pred, y, w): a batch's right answers as the task counts them, in keras.ops (it
    runs inside the compiled JAX loop): scored targets (echo), recalled symbols (copy), sums
    within 0.04 (adding)."""
    from keras import ops

    task = cfg.data.task
    if task == "echo":
        return lambda y_pred, y, w: ops.sum(
            w * ops.cast(ops.argmax(y_pred, axis=-1) == y, "float32"))
    per_sample = _sample_hits(cfg)
    scale = cfg.data.recall if task == "copy" else 1
    return lambda y_pred, y, w: ops.sum(per_sample(y, y_pred)) * scale


def reset_states(model) -> None:
    """Zero every stateful layer's state (Keras 3 has no model.reset_states)."""
    for layer in stateful_layers(model):
        layer.reset_state()


# the layer that holds each kind's units, by name (as the builders above name them)
BODY = {"lstm": "lstm", "gru": "gru", "simple_rnn": "simple_rnn", "mlp": "hidden",
        "conv1d": "conv1", "tcn": "tcn1a"}


def disagreement(cfg: Config, model) -> str | None:
    """How a loaded model disagrees with the config beside it, naming the key; None if the
    model is what build_model(cfg) builds (shapes, layers, units, state, encoding)."""
    n, steps, kind, m = cfg.n_symbols or 1, cfg.steps, cfg.model.kind, cfg.model
    layers = {layer.name: layer for layer in model.layers}
    batch, given = model.input_shape[0], model.input_shape[1]
    out = model.output_shape
    if out[-1] != n:
        return f"data.n_unique is {n} in config.yaml, but the model predicts {out[-1]} values"
    if (len(out) == 3) != cfg.per_step_output:
        return (f"data.target is {cfg.data.target} in config.yaml, but the model has "
                f"{'an output per step' if len(out) == 3 else 'one output per sample'}")
    if given != steps:
        key = {"copy": "data.delay", "adding": "data.length"}.get(
            cfg.data.task, "data.length" if cfg.data.context == "full" else "data.window")
        return f"{key} makes {steps} input steps in config.yaml, but the model takes {given}"
    if BODY[kind] not in layers:
        found = next((k for k, name in BODY.items() if name in layers), "another kind")
        return f"model.kind is {kind} in config.yaml, but the model is {found}"
    body = layers[BODY[kind]]
    units = getattr(body, "units", None) or getattr(body, "filters", None)
    if units != m.units:
        return f"model.units is {m.units} in config.yaml, but the model has {units}"
    if bool(getattr(body, "stateful", False)) != m.stateful:
        return (f"model.stateful is {str(m.stateful).lower()} in config.yaml, but the model is "
                f"{'stateless' if m.stateful else 'stateful'}")
    if m.stateful and batch != cfg.train.batch_size:
        return (f"train.batch_size is {cfg.train.batch_size} in config.yaml, but the stateful "
                f"model runs batches of {batch}")
    if cfg.n_symbols is None:
        return None
    encoding = "onehot" if "one_hot" in layers else "embedding"
    if encoding != m.encoding:
        return f"model.encoding is {m.encoding} in config.yaml, but the model uses {encoding}"
    if encoding == "embedding" and layers["embedding"].output_dim != m.embedding_dim:
        return (f"model.embedding_dim is {m.embedding_dim} in config.yaml, but the model has "
                f"{layers['embedding'].output_dim}")
    if ("mask" in layers) != (m.encoding == "onehot" and cfg.data.task == "echo"
                              and cfg.data.missing == "mask"):
        return f"data.missing is {cfg.data.missing} in config.yaml, but the model " + (
            "masks missing steps" if "mask" in layers else "does not mask missing steps")
    return None


def copy_with_batch(model, cfg: Config, batch_size: int):
    """The same weights in a model built for another fixed batch size (stateful inference)."""
    clone = build_model(cfg, batch_size=batch_size)
    clone.set_weights(model.get_weights())
    return clone


def size(model) -> dict[str, int]:
    """Trainable parameters and multiply-adds per sample of a forward pass.

    Each kernel costs its size once per position it is applied at: every timestep for a
    recurrent layer (input and recurrent kernels) or a per-timestep Dense or Conv1D; lookups
    (the one-hot table, embeddings) cost none.
    """
    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    macs = 0
    for layer in model.layers:
        weights = {w.path.split("/")[-1]: int(np.prod(w.shape)) for w in layer.weights}
        if "recurrent_kernel" in weights:
            inputs = layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input
            macs += inputs.shape[1] * (weights["kernel"] + weights["recurrent_kernel"])
        elif "kernel" in weights:
            macs += int(np.prod(layer.output.shape[1:-1])) * weights["kernel"]
    return {"parameters": params, "multiply_adds_per_sample": int(macs)}
