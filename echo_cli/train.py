"""Training and held-out evaluation. Everything here returns plain numbers.

    model, result = train(cfg, engine="fast", on_epoch=lambda epoch, logs: None)
    result.heldout.accuracy

Two engines make the same weight updates on the same batches in the same order, with the
state reset at every sequence boundary:
- `tutorial`: the tutorial's loop, one `model.fit` per sequence (epoch).
- `fast`: one `model.fit` over all sequences, `steps_per_execution` set to the batches of one
  sequence, and the reset in a callback after each execution.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from echo_cli import models
from echo_cli.config import Config
from echo_cli.data import (
    Dataset,
    Framed,
    cycle,
    frame,
    generate_sequences,
    rows_per_sequence,
    stream_rng,
)
from echo_cli.stats import wilson_interval

ENGINES = ("fast", "tutorial")


class _ReachedTarget(Exception):
    """Raised from the per-epoch hook to stop training once validation reaches its target."""
EpochHook = Callable[[int, dict[str, float]], None]

_MAX_SEQUENCES_PER_FIT_EPOCH = 50  # fast engine: Keras epochs group this many sequences
_EVAL_CHUNK = 200  # held-out sequences predicted side by side


@dataclass
class Example:
    """One decoded held-out sequence: inputs and, per row, expected and predicted ids."""

    sequence: list[int]
    t: list[int]
    expected: list  # ints, or lists of ints (-1 unscored) for sequence targets
    predicted: list


@dataclass
class Heldout:
    accuracy: float
    correct: int
    targets: int
    ci95_low: float
    ci95_high: float
    sequences: int
    unscored: int = 0
    exact_match: float | None = None
    per_position: list[float | None] | None = None
    examples: list[Example] = field(default_factory=list)


@dataclass
class RunResult:
    engine: str
    backend: str
    epochs: int
    epochs_completed: int
    updates: int
    samples: int
    train_seconds: float
    history: list[dict[str, float]]
    heldout: Heldout | None
    interrupted: bool = False
    peak_rss_mb: float | None = None
    reached_target: bool = False
    parameters: int = 0
    multiply_adds_per_sample: int = 0

    def metrics(self, cfg: Config) -> dict:
        """The flat record written to metrics.json."""
        h = self.heldout
        out = {
            "name": cfg.name,
            "seed": cfg.seed,
            "data_source": cfg.data.source,
            "engine": self.engine,
            "backend": self.backend,
            "epochs": self.epochs,
            "epochs_completed": self.epochs_completed,
            "interrupted": self.interrupted,
            "model_kind": cfg.model.kind,
            "parameters": self.parameters,
            "multiply_adds_per_sample": self.multiply_adds_per_sample,
            "updates": self.updates,
            "samples": self.samples,
            "train_seconds": round(self.train_seconds, 3),
            "peak_rss_mb": self.peak_rss_mb,
            "chance_accuracy": cfg.chance_accuracy,
            "final_train_loss": self.history[-1]["loss"] if self.history else None,
            "final_train_accuracy": self.history[-1]["accuracy"] if self.history else None,
        }
        held = {
            "heldout_accuracy": None, "heldout_correct": None, "heldout_targets": None,
            "heldout_sequences": None, "ci95_low": None, "ci95_high": None,
        }
        if h is not None:
            held = {
                "heldout_accuracy": h.accuracy,
                "heldout_correct": h.correct,
                "heldout_targets": h.targets,
                "heldout_sequences": h.sequences,
                "ci95_low": h.ci95_low,
                "ci95_high": h.ci95_high,
            }
            if cfg.data.target == "sequence":
                held.update(
                    heldout_unscored_positions=h.unscored,
                    heldout_exact_match=h.exact_match,
                    heldout_per_position=h.per_position,
                )
        out.update(held)
        if cfg.train.target_accuracy is not None:
            checks = [r for r in self.history if "validation_accuracy" in r]
            out.update(
                target_accuracy=cfg.train.target_accuracy,
                validation_sequences=cfg.eval.validation_sequences,
                reached_target=self.reached_target,
                epochs_to_target=self.epochs_completed if self.reached_target else None,
                samples_to_target=self.samples if self.reached_target else None,
                final_validation_accuracy=checks[-1]["validation_accuracy"] if checks else None,
            )
        return out


# ---------------------------------------------------------------------------------------------
# helpers

def _arrays(framed: Framed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten framed sequences to model arrays: ids, sparse targets, sample weights."""
    x = models.model_input(framed.x.reshape(-1, framed.x.shape[-1]))
    y = framed.y.reshape(-1, *framed.y.shape[2:])
    weights = (y >= 0).astype(np.float32)
    return x, np.maximum(y, 0).astype(np.int32), weights


def _scored_per_sequence(framed: Framed) -> int:
    return int((framed.y[0] >= 0).sum())


def _exact_accuracy(mean: float, scored: int) -> float:
    """A float32 running mean back to the exact fraction correct/scored of one sequence."""
    return round(mean * scored) / scored


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB (None where the OS won't say)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def engine_problem(engine: str, backend: str, cfg: Config) -> str | None:
    """Why this engine cannot run this config on this backend, or None."""
    if engine == "tutorial" and backend == "jax" and cfg.model.stateful:
        return ("--engine tutorial cannot run a stateful model on the jax backend: Keras 3 "
                "leaves RNN state untracked, so its JAX fit silently drops the state between "
                "batches; use --set train.backend=tensorflow (the fast engine carries the state "
                "itself on jax)")
    return None


def _chunk_size(sequences: int, cfg: Config) -> int:
    """Sequences per compiled chunk (or Keras epoch): divides the epochs and, when validating,
    the validation interval, so that checks fall on chunk boundaries."""
    every = cfg.train.validate_every if cfg.train.target_accuracy is not None else 0
    return max(k for k in range(1, _MAX_SEQUENCES_PER_FIT_EPOCH + 1)
               if sequences % k == 0 and every % k == 0)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _tutorial_engine(model, cfg: Config, framed: Framed, on_epoch: EpochHook) -> None:
    """The tutorial's loop: one `fit` per sequence, then reset the state."""
    models.compile_model(model, cfg)
    scored = _scored_per_sequence(framed)
    for epoch in range(framed.x.shape[0]):
        one = Framed(t=framed.t, x=framed.x[epoch : epoch + 1], y=framed.y[epoch : epoch + 1])
        x, y, w = _arrays(one)
        fit = model.fit(x, y, sample_weight=w, batch_size=cfg.train.batch_size, epochs=1,
                        shuffle=False, verbose=0)
        models.reset_states(model)
        on_epoch(epoch + 1, {"loss": float(fit.history["loss"][0]),
                             "accuracy": _exact_accuracy(fit.history["accuracy"][0], scored)})


def _fast_engine(model, cfg: Config, framed: Framed, on_epoch: EpochHook) -> None:
    """One `fit` over every sequence; resets land on sequence boundaries.

    `steps_per_execution` equals the batches of one sequence, so Keras returns to Python
    exactly once per sequence: the callback resets the state there and turns Keras's running
    means into that sequence's loss and accuracy. Each Keras epoch groups several sequences
    so the running sums stay small and exact. Batches, their order and the number of updates
    are the tutorial loop's.
    """
    import keras

    sequences = framed.x.shape[0]
    batches = rows_per_sequence(cfg.framing) // cfg.train.batch_size
    scored = _scored_per_sequence(framed)
    group = _chunk_size(sequences, cfg)
    models.compile_model(model, cfg, steps_per_execution=batches)

    class PerSequence(keras.callbacks.Callback):
        done = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.seen, self.totals = 0, (0.0, 0.0)

        def on_train_batch_end(self, batch, logs=None):
            models.reset_states(model)
            self.seen += 1
            loss = float(logs["loss"]) * self.seen
            acc = float(logs["accuracy"]) * self.seen
            seq_loss, seq_acc = loss - self.totals[0], acc - self.totals[1]
            self.totals = (loss, acc)
            self.done += 1
            on_epoch(self.done, {"loss": seq_loss, "accuracy": _exact_accuracy(seq_acc, scored)})

    x, y, w = _arrays(framed)
    model.fit(x, y, sample_weight=w, batch_size=cfg.train.batch_size, epochs=sequences // group,
              steps_per_epoch=batches * group, shuffle=False, verbose=0,
              callbacks=[PerSequence()])


def _fast_engine_jax(model, cfg: Config, framed: Framed, on_epoch: EpochHook) -> None:
    """Under JAX, each chunk of sequences is one compiled program.

    The training step is Keras's own (stateless forward pass, `stateless_compute_loss`,
    `optimizer.stateless_apply`), run by `jax.lax.scan` over the batches of a sequence and
    again over the sequences of a chunk. Two things make it a custom loop rather than `fit`:
    - Speed: Python runs once per chunk instead of once per batch, which is where the time went.
    - Correctness: Keras 3 leaves a stateful RNN's state variables untracked, so its JAX `fit`
      silently drops the state between batches. Here the state is carried explicitly from
      batch to batch and zeroed at the start of every sequence, as the tutorial's loop does,
      with no gradient through it (Keras stops gradients at batch boundaries too).
    Each sequence's mean loss and exact accuracy come out of the program.
    """
    import jax
    import jax.numpy as jnp

    sequences, batch = framed.x.shape[0], cfg.train.batch_size
    batches = rows_per_sequence(cfg.framing) // batch
    scored = _scored_per_sequence(framed)
    x, y, w = _arrays(framed)

    def per_step(a: np.ndarray) -> np.ndarray:  # (sequences, batches, batch, ...)
        return a.reshape(sequences, batches, batch, *a.shape[1:])

    xs, ys, ws = per_step(x), per_step(y), per_step(w)
    models.compile_model(model, cfg)
    model._symbolic_build(data_batch=(x[:batch], y[:batch], w[:batch]))  # what fit does first
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)

    forward = models.stateless_forward(model)
    zero_states = [jnp.zeros(v.shape, v.dtype) for v in models.rnn_state_variables(model)]
    metrics = [v.value for v in model.metrics_variables]

    def loss_fn(trainable, non_trainable, states, xb, yb, wb):
        y_pred, states, non_trainable = forward(trainable, non_trainable, states, xb, True)
        loss, _ = model.stateless_compute_loss(trainable, non_trainable, metrics, x=xb, y=yb,
                                               y_pred=y_pred, sample_weight=wb, training=True)
        return loss, (y_pred, states, non_trainable)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def one_batch(carry, data):
        trainable, non_trainable, optimizer, states = carry
        xb, yb, wb = data
        (loss, (y_pred, states, non_trainable)), grads = grad_fn(
            trainable, non_trainable, jax.lax.stop_gradient(states), xb, yb, wb)
        trainable, optimizer = model.optimizer.stateless_apply(optimizer, grads, trainable)
        hits = jnp.sum(wb * (jnp.argmax(y_pred, axis=-1) == yb))
        return (trainable, non_trainable, optimizer, states), (loss, hits)

    def one_sequence(carry, data):
        (*carry, _), (losses, hits) = jax.lax.scan(one_batch, (*carry, zero_states), data)
        return tuple(carry), (jnp.mean(losses), jnp.sum(hits))

    @jax.jit
    def run_chunk(carry, xs, ys, ws):
        return jax.lax.scan(one_sequence, carry, (xs, ys, ws))

    groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables)
    chunk = _chunk_size(sequences, cfg)
    for start in range(0, sequences, chunk):
        # The model's variables hold the weights between chunks, so hooks (validation, Ctrl-C)
        # see them; read them afresh, since Keras's own predict may have replaced their buffers.
        carry = tuple([v.value for v in group] for group in groups)
        part = slice(start, start + chunk)
        carry, (losses, hits) = run_chunk(carry, xs[part], ys[part], ws[part])
        for group, values in zip(groups, carry, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)
        losses, hits = np.asarray(losses), np.asarray(hits)
        # The model now holds the whole chunk's weights, so its epochs are all recorded even
        # if Ctrl-C arrives while they are reported; the interrupt is raised after that.
        interrupted = False
        for i in range(chunk):
            try:
                on_epoch(start + i + 1, {"loss": float(losses[i]),
                                         "accuracy": round(float(hits[i])) / scored})
            except KeyboardInterrupt:
                interrupted = True
        if interrupted:
            raise KeyboardInterrupt


class Predictor:
    """Predicted ids for framed sequences x: (N, rows, timesteps), reset per sequence.

    A stateful model is copied to a batch of chunk * batch_size, so that sequences run side
    by side: slot i of every step continues slot i of the step before, exactly as in training.
    The copy is built once and takes the model's current weights at every call.
    """

    def __init__(self, model, cfg: Config, *, sequences: int):
        self.model, self.cfg = model, cfg
        self.chunk = min(sequences, _EVAL_CHUNK)
        self.runner = (models.copy_with_batch(model, cfg, self.chunk * cfg.train.batch_size)
                       if cfg.model.stateful else None)
        self._jax_steps = (_jax_stateful_steps(self.runner)
                           if self.runner is not None and _backend() == "jax" else None)

    def _run_steps(self, steps: np.ndarray) -> np.ndarray:
        """Outputs for consecutive batches (steps, chunk*batch, ...) from a zero state."""
        if self._jax_steps is not None:
            runner = self.runner
            return np.asarray(self._jax_steps(
                [v.value for v in runner.trainable_variables],
                [v.value for v in runner.non_trainable_variables], steps))
        models.reset_states(self.runner)
        outs = [self.runner.predict_on_batch(step) for step in steps]
        models.reset_states(self.runner)
        return np.stack(outs)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns (predicted ids, their probabilities), each (N, rows) or (N, rows, steps)."""
        n, rows, steps = x.shape
        batch, chunk = self.cfg.train.batch_size, self.chunk
        preds, probs = [], []
        if self.runner is not None:
            self.runner.set_weights(self.model.get_weights())
        for start in range(0, n, chunk):
            part = x[start : start + chunk]
            if self.runner is None:
                out = self.model.predict(models.model_input(part.reshape(-1, steps)),
                                         batch_size=1024, verbose=0)
                out = out.reshape(len(part), rows, *out.shape[1:])
            else:
                real = len(part)
                if real < chunk:  # pad with empty sequences to the runner's fixed batch
                    part = np.concatenate([part, np.full((chunk - real, rows, steps), -1)])
                # (chunk, rows) -> steps of (chunk * batch): slot (s, i) is row j*batch+i of s
                stepped = part.reshape(chunk, rows // batch, batch, steps).transpose(1, 0, 2, 3)
                outs = self._run_steps(
                    models.model_input(stepped.reshape(rows // batch, chunk * batch, steps)))
                tail = outs.shape[2:]
                out = outs.reshape(rows // batch, chunk, batch, *tail)
                out = out.transpose(1, 0, 2, *range(3, out.ndim)).reshape(chunk, rows, *tail)
                out = out[:real]
            preds.append(np.argmax(out, axis=-1))
            probs.append(np.max(out, axis=-1))
        return np.concatenate(preds), np.concatenate(probs)


def _jax_stateful_steps(runner):
    """A jitted scan of the runner over consecutive batches, carrying the state explicitly
    (Keras's own JAX predict drops a stateful layer's state between batches)."""
    import jax
    import jax.numpy as jnp

    forward = models.stateless_forward(runner)
    zero_states = [jnp.zeros(v.shape, v.dtype) for v in models.rnn_state_variables(runner)]

    @jax.jit
    def run(trainable, non_trainable, steps):
        def step(states, xb):
            y_pred, states, _ = forward(trainable, non_trainable, states, xb, False)
            return states, y_pred

        return jax.lax.scan(step, zero_states, steps)[1]

    return run


def _fresh(cfg: Config, stream: str, count: int) -> tuple[np.ndarray, Framed]:
    seqs = generate_sequences(stream_rng(cfg.seed, stream), count=count,
                              length=cfg.data.length, n_unique=cfg.data.n_unique)
    return seqs, frame(seqs, cfg.framing)


def _accuracy(pred: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    scored = y >= 0
    return int(((pred == y) & scored).sum()), int(scored.sum())


def evaluate(model, cfg: Config, *, dataset: Dataset | None = None) -> Heldout:
    """Accuracy on eval.sequences fresh sequences from the held-out seed stream, or on the
    held-out part of a CSV dataset."""
    if dataset is None:
        seqs, framed = _fresh(cfg, "heldout", cfg.eval.sequences)
    else:
        seqs = dataset.heldout
        framed = frame(seqs, cfg.framing)
    pred, _ = Predictor(model, cfg, sequences=len(seqs))(framed.x)
    scored = framed.y >= 0
    hits = (pred == framed.y) & scored
    correct, targets = int(hits.sum()), int(scored.sum())
    low, high = wilson_interval(correct, targets)
    heldout = Heldout(accuracy=correct / targets, correct=correct, targets=targets,
                      ci95_low=low, ci95_high=high, sequences=len(seqs))
    if cfg.data.target == "sequence":
        heldout.unscored = int((~scored).sum())
        per_sample_ok = (hits | ~scored).all(axis=-1)
        heldout.exact_match = float(per_sample_ok.mean())
        by_pos = scored.sum(axis=(0, 1))
        heldout.per_position = [
            float(hits[..., k].sum() / by_pos[k]) if by_pos[k] else None
            for k in range(scored.shape[-1])
        ]
    for i in range(min(cfg.eval.examples, len(seqs))):
        heldout.examples.append(Example(
            sequence=seqs[i].tolist(), t=framed.t.tolist(),
            expected=framed.y[i].tolist(),
            predicted=np.where(scored[i], pred[i], -1).tolist(),
        ))
    return heldout


# ---------------------------------------------------------------------------------------------
# the run

def train(cfg: Config, *, engine: str = "fast", on_epoch: EpochHook | None = None,
          evaluate_heldout: bool = True, dataset: Dataset | None = None):
    """Seed, generate, build, fit and evaluate one experiment.

    Args:
        cfg: a validated config.
        engine: "fast" or "tutorial"; both make the same updates.
        on_epoch: called with (epoch, {"loss", "accuracy"}) after every sequence.
        evaluate_heldout: score the model on fresh held-out sequences afterwards.
        dataset: for data.source csv, the sequences read from the file (cycled, one per
            epoch) and its held-out part; None for fresh random sequences.

    Returns:
        (model, RunResult). After Ctrl-C the result has interrupted=True, the history so far
        and no held-out score.
    """
    keras = models.import_keras(cfg.train.backend)

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    problem = engine_problem(engine, keras.backend.backend(), cfg)
    if problem:
        raise ValueError(problem)
    on_epoch = on_epoch or (lambda epoch, logs: None)

    # seed: the initializers are seeded in build_model and the data has its own streams; the
    # global seed covers anything else (it imports TensorFlow, so only on that backend)
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(cfg.seed)

    # data: one sequence per epoch, fresh from the training stream or cycled from the file
    plan = cfg.framing
    if dataset is None:
        seqs = generate_sequences(stream_rng(cfg.seed, "train"), count=cfg.train.epochs,
                                  length=cfg.data.length, n_unique=cfg.data.n_unique)
    else:
        seqs = cycle(dataset.train, cfg.train.epochs)
    framed = frame(seqs, plan)

    # build
    model = models.build_model(cfg)

    # fit
    if engine == "tutorial":
        run = _tutorial_engine
    else:
        run = _fast_engine_jax if keras.backend.backend() == "jax" else _fast_engine
    history: list[dict] = []

    target = cfg.train.target_accuracy
    if target is not None:  # a fixed validation set, apart from training and held-out data
        _, validation = _fresh(cfg, "validation", cfg.eval.validation_sequences)
        validate = Predictor(model, cfg, sequences=cfg.eval.validation_sequences)

    def record(epoch: int, logs: dict[str, float]) -> None:
        history.append({"epoch": epoch, **logs})
        if target is not None and epoch % cfg.train.validate_every == 0:
            correct, total = _accuracy(validate(validation.x)[0], validation.y)
            history[-1]["validation_accuracy"] = correct / total
            if correct / total >= target:
                raise _ReachedTarget
        on_epoch(epoch, logs)

    interrupted = reached = False
    start = time.perf_counter()
    try:
        run(model, cfg, framed, record)
    except KeyboardInterrupt:
        interrupted = True
    except _ReachedTarget:
        reached = True
        on_epoch(len(history), history[-1])
    seconds = time.perf_counter() - start
    models.reset_states(model)
    done = len(history)
    batches = rows_per_sequence(plan) // cfg.train.batch_size

    # evaluate
    heldout = None
    if evaluate_heldout and not interrupted:
        try:
            heldout = evaluate(model, cfg, dataset=dataset)
        except KeyboardInterrupt:  # the trained model is kept; only the score is missing
            interrupted = True
    result = RunResult(
        engine=engine, backend=_backend(), epochs=cfg.train.epochs, epochs_completed=done,
        updates=done * batches, samples=done * rows_per_sequence(plan), train_seconds=seconds,
        history=history, heldout=heldout, interrupted=interrupted, peak_rss_mb=_peak_rss_mb(),
        reached_target=reached, **models.size(model),
    )
    return model, result

