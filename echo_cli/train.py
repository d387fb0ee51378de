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
from dataclasses import asdict, dataclass, field

import numpy as np

from echo_cli import models
from echo_cli.config import Config
from echo_cli.data import Framed, frame, generate_sequences, rows_per_sequence, stream_rng
from echo_cli.stats import wilson_interval

ENGINES = ("fast", "tutorial")
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

    def metrics(self, cfg: Config) -> dict:
        """The flat record written to metrics.json."""
        h = self.heldout
        out = {
            "name": cfg.name,
            "seed": cfg.seed,
            "engine": self.engine,
            "backend": self.backend,
            "epochs": self.epochs,
            "epochs_completed": self.epochs_completed,
            "interrupted": self.interrupted,
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
    group = max(k for k in range(1, _MAX_SEQUENCES_PER_FIT_EPOCH + 1) if sequences % k == 0)
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

    Keras's own `train_step` (the function `fit` compiles) runs inside `jax.lax.scan`: over the
    batches of a sequence, then over the sequences of a chunk. At the start of every sequence
    the stateful layers' state and the metrics are zeroed inside the program, so resets land on
    sequence boundaries and each sequence's loss and accuracy come out exactly as the tutorial's
    one `fit` per sequence reports them. Python runs once per chunk instead of once per batch,
    which is where the time went.
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

    state_ids = {id(v) for layer in models.stateful_layers(model) for v in layer.states}
    is_state = [id(v) in state_ids for v in model.non_trainable_variables]
    groups = (model.trainable_variables, model.non_trainable_variables,
              model.optimizer.variables, model.metrics_variables)

    def one_sequence(state, data):
        trainable, non_trainable, optimizer, metrics = state
        non_trainable = [jnp.zeros_like(v) if reset else v
                         for v, reset in zip(non_trainable, is_state, strict=True)]
        metrics = [jnp.zeros_like(v) for v in metrics]

        def one_batch(state, batch_data):
            logs, state = model.train_step(state, batch_data)
            return state, logs

        state, logs = jax.lax.scan(one_batch, (trainable, non_trainable, optimizer, metrics), data)
        return state, {k: v[-1] for k, v in logs.items()}

    @jax.jit
    def run_chunk(state, xs, ys, ws):
        return jax.lax.scan(one_sequence, state, (xs, ys, ws))

    chunk = max(k for k in range(1, _MAX_SEQUENCES_PER_FIT_EPOCH + 1) if sequences % k == 0)
    state = tuple([v.value for v in group] for group in groups)
    try:
        for start in range(0, sequences, chunk):
            part = slice(start, start + chunk)
            state, logs = run_chunk(state, xs[part], ys[part], ws[part])
            losses, accs = np.asarray(logs["loss"]), np.asarray(logs["accuracy"])
            for i in range(chunk):
                on_epoch(start + i + 1, {"loss": float(losses[i]),
                                         "accuracy": _exact_accuracy(float(accs[i]), scored)})
    finally:  # also after Ctrl-C: the model keeps the last finished chunk
        for group, values in zip(groups, state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)


def _predict(model, cfg: Config, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted ids and their probabilities for framed sequences x: (N, rows, timesteps).

    A stateful model is copied to a batch of chunk * batch_size, so that sequences run side
    by side: slot i of every step continues slot i of the step before, exactly as in training.
    """
    n, rows, steps = x.shape
    batch = cfg.train.batch_size
    preds, probs = [], []
    if cfg.model.stateful:
        chunk = min(n, _EVAL_CHUNK)
        runner = models.copy_with_batch(model, cfg, chunk * batch)
    for start in range(0, n, _EVAL_CHUNK):
        part = x[start : start + _EVAL_CHUNK]
        if not cfg.model.stateful:
            out = model.predict(models.model_input(part.reshape(-1, steps)), batch_size=1024,
                                verbose=0)
            out = out.reshape(len(part), rows, *out.shape[1:])
        else:
            real = len(part)
            if real < chunk:  # pad with empty sequences to the runner's fixed batch
                part = np.concatenate([part, np.full((chunk - real, rows, steps), -1)])
            # (chunk, rows) -> steps of (chunk * batch): slot (s, i) is row j*batch+i of seq s
            stepped = part.reshape(chunk, rows // batch, batch, steps).transpose(1, 0, 2, 3)
            models.reset_states(runner)
            outs = [runner.predict_on_batch(models.model_input(step.reshape(chunk * batch, steps)))
                    for step in stepped]
            models.reset_states(runner)
            out = np.stack(outs).reshape(rows // batch, chunk, batch, *outs[0].shape[1:])
            out = out.transpose(1, 0, 2, *range(3, out.ndim)).reshape(chunk, rows,
                                                                      *outs[0].shape[1:])
            out = out[:real]
        preds.append(np.argmax(out, axis=-1))
        probs.append(np.max(out, axis=-1))
    return np.concatenate(preds), np.concatenate(probs)


def evaluate(model, cfg: Config) -> Heldout:
    """Accuracy on eval.sequences fresh sequences from the held-out seed stream."""
    seqs = generate_sequences(stream_rng(cfg.seed, "heldout"), count=cfg.eval.sequences,
                              length=cfg.data.length, n_unique=cfg.data.n_unique)
    framed = frame(seqs, cfg.framing)
    pred, _ = _predict(model, cfg, framed.x)
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
          evaluate_heldout: bool = True):
    """Seed, generate, build, fit and evaluate one experiment.

    Args:
        cfg: a validated config.
        engine: "fast" or "tutorial"; both make the same updates.
        on_epoch: called with (epoch, {"loss", "accuracy"}) after every sequence.
        evaluate_heldout: score the model on fresh held-out sequences afterwards.

    Returns:
        (model, RunResult). After Ctrl-C the result has interrupted=True, the history so far
        and no held-out score.
    """
    keras = models.import_keras(cfg.train.backend)

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    on_epoch = on_epoch or (lambda epoch, logs: None)

    # seed: the initializers are seeded in build_model and the data has its own streams; the
    # global seed covers anything else (it imports TensorFlow, so only on that backend)
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(cfg.seed)

    # data: one fresh sequence per epoch, all from the training stream
    plan = cfg.framing
    seqs = generate_sequences(stream_rng(cfg.seed, "train"), count=cfg.train.epochs,
                              length=cfg.data.length, n_unique=cfg.data.n_unique)
    framed = frame(seqs, plan)

    # build
    model = models.build_model(cfg)

    # fit
    if engine == "tutorial":
        run = _tutorial_engine
    else:
        run = _fast_engine_jax if keras.backend.backend() == "jax" else _fast_engine
    history: list[dict] = []

    def record(epoch: int, logs: dict[str, float]) -> None:
        history.append({"epoch": epoch, **logs})
        on_epoch(epoch, logs)

    interrupted = False
    start = time.perf_counter()
    try:
        run(model, cfg, framed, record)
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - start
    models.reset_states(model)
    done = len(history)
    batches = rows_per_sequence(plan) // cfg.train.batch_size

    # evaluate
    heldout = evaluate(model, cfg) if evaluate_heldout and not interrupted else None
    result = RunResult(
        engine=engine, backend=_backend(), epochs=cfg.train.epochs, epochs_completed=done,
        updates=done * batches, samples=done * rows_per_sequence(plan), train_seconds=seconds,
        history=history, heldout=heldout, interrupted=interrupted, peak_rss_mb=_peak_rss_mb(),
    )
    return model, result


def result_dict(result: RunResult) -> dict:
    return asdict(result)
