"""Use a trained run: load it safely, predict from given integers, stream one at a time.

    run = load_run(Path("runs/lag1-20261129-120000"))
    rows = predict_rows(run, [3, 1, 4, 1, 5, 9, 2, 6])
    streamer = Streamer(run); streamer.push(3)   # -> None (no echo yet), then ints

The run directory is read through rundir.py; predictions come from evaluate.py.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from echo_cli.config.loading import Config, ConfigError, cut, derive
from echo_cli.errors import EchoError
from echo_cli.models import factory as models
from echo_cli.models.keras_internals import rnn_state_variables, stateless_forward
from echo_cli.store import rundir
from echo_cli.tasks.framing import MISSING, Framing, frame, timesteps
from echo_cli.training import backends
from echo_cli.training.evaluate import Predictor

INTEGER = re.compile(r"[+-]?[0-9]{1,18}")  # plain ASCII digits, short enough to be an id


class RunError(EchoError, ValueError):
    """A run directory or an input that cannot be used. The message is one line."""


@dataclass
class Run:
    path: Path
    cfg: Config
    model: Any
    vocabulary: list | None = None  # id -> original value, for runs trained on mapped data

    def encode(self, tokens: list[str]) -> list[int]:
        """Command-line tokens to ids, checking every one.

        Raises:
            RunError: a token that is not an integer in range (or not in the vocabulary).
        """
        if self.vocabulary is not None:
            index = {str(v): i for i, v in enumerate(self.vocabulary)}
            bad = [tok for tok in tokens if tok not in index]
            if bad:
                shown = ", ".join(str(v) for v in self.vocabulary[:8])
                raise RunError(f"{cut(bad[0])} is not in this run's vocabulary of "
                               f"{len(self.vocabulary)} values ({shown}, ...)")
            return [index[tok] for tok in tokens]
        n = self.cfg.data.n_unique
        ids = []
        for tok in tokens:
            if not INTEGER.fullmatch(tok):  # plain ASCII digits: not '٣', '1_0' or ' 3'
                raise RunError(f"{cut(tok)} is not an integer; give integers from 0 to {n - 1}")
            value = int(tok)
            if not 0 <= value < n:
                raise RunError(f"{value} is outside 0 .. {n - 1}, the integers this run was "
                               f"trained on (data.n_unique={n})")
            ids.append(value)
        return ids

    def decode(self, i: int) -> Any:
        return self.vocabulary[i] if self.vocabulary is not None else i


def load_run(path: Path) -> Run:
    """Load config.yaml, model.keras (Keras safe mode, no pickles) and any vocabulary.

    Raises:
        RunError: a missing or incomplete directory, a bad config, or a model that won't load.
    """
    if not path.is_dir():
        raise RunError(f"run directory {path} does not exist; give a directory that "
                       f"`echo-cli train` wrote, e.g. runs/lag1-<time>")
    missing = [name for name in (rundir.CONFIG, rundir.MODEL) if not (path / name).is_file()]
    if missing:
        raise RunError(f"run directory {path} is incomplete: no {' or '.join(missing)}; "
                       f"train it again with `echo-cli train CONFIG --out DIR`")
    try:
        cfg = rundir.read_config(path)
    except ConfigError as err:
        raise RunError(str(err)) from None
    if rundir.edited_config(path):
        raise RunError(f"{path / rundir.CONFIG} was changed after training (it no longer "
                       f"matches the config the model was trained with); restore it, or train "
                       f"again with the changed config")
    vocabulary = rundir.read_vocabulary(path)
    if vocabulary is not None and len(vocabulary) != cfg.data.n_unique:
        raise RunError(f"{path / rundir.VOCABULARY} holds {len(vocabulary)} values but "
                       f"data.n_unique is {cfg.data.n_unique} in config.yaml; they must agree")
    if not zipfile.is_zipfile(path / rundir.MODEL):
        raise RunError(f"{path / rundir.MODEL} is not a Keras model file (a .keras file is a zip "
                       f"archive); train the run again")
    keras = backends.import_keras(cfg.train.backend)
    try:
        with backends.quiet_stderr():
            model = keras.saving.load_model(path / rundir.MODEL, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a damaged or foreign file
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise RunError(f"{path / rundir.MODEL} won't load: {reason}") from None
    problem = models.disagreement(cfg, model)
    if problem:
        raise RunError(f"{path}: config.yaml and model.keras disagree: {problem}; restore "
                       f"config.yaml or train again")
    return Run(path=path, cfg=cfg, model=model, vocabulary=vocabulary)


def _plan(cfg: Config, length: int) -> Framing:
    """Frame an input of any length as in training; a full context is a window of length."""
    return Framing(length=length, lag=cfg.data.lag, window=timesteps(cfg.framing),
                   missing=cfg.data.missing, context="window", target=cfg.data.target,
                   batch_size=1)


def predict_rows(run: Run, ids: list[int]) -> list[dict[str, Any]]:
    """One row per input position: input, expected X(t-lag), prediction and its probability.

    Rows that cannot be predicted (no full window, or t < lag with no target) say why.

    Raises:
        RunError: fewer integers than one window.
    """
    cfg = run.cfg
    plan = _plan(cfg, len(ids))
    steps = timesteps(cfg.framing)
    need = (steps if cfg.data.missing == "drop" else 1)
    if len(ids) < max(need, cfg.data.lag + 1):
        raise RunError(f"give at least {max(need, cfg.data.lag + 1)} integers (one window of "
                       f"{steps} with a target {cfg.data.lag} back), got {len(ids)}")
    framed = frame(np.array([ids]), plan)
    x = framed.x
    batch = cfg.train.batch_size if cfg.model.stateful else 1
    pad = (-x.shape[1]) % batch  # a stateful model runs whole batches; extra rows are empty
    if pad:
        x = np.concatenate([x, np.full((1, pad, steps), MISSING)], axis=1)
    pred, prob = Predictor(run.model, cfg, sequences=1)(x)
    pred, prob = pred[0, : len(framed.t)], prob[0, : len(framed.t)]
    if cfg.data.target == "sequence":  # the last position of row t predicts X(t - lag)
        pred, prob = pred[:, -1], prob[:, -1]
    at = {int(t): i for i, t in enumerate(framed.t)}
    rows = []
    for t, value in enumerate(ids):
        row: dict[str, Any] = {"t": t, "input": run.decode(value), "expected": None,
                               "predicted": None, "probability": None, "match": None}
        if t >= cfg.data.lag:
            row["expected"] = run.decode(ids[t - cfg.data.lag])
        if t in at:
            i = at[t]
            row.update(predicted=run.decode(int(pred[i])), probability=float(prob[i]),
                       match=bool(ids[t - cfg.data.lag] == int(pred[i])))
        else:
            row["note"] = ("no target yet" if t < cfg.data.lag
                           else f"cold start: window of {steps}")
        rows.append(row)
    return rows


def stream_problem(cfg: Config) -> str | None:
    """Why a run's model cannot echo one number at a time, or None if it can."""
    d = cfg.data
    needs = []
    if d.context != "full":
        needs.append("data.context: full")
    if d.target != "sequence":
        needs.append("data.target: sequence")
    if d.missing != "mask":
        needs.append("data.missing: mask")
    if cfg.model.stateful:
        needs.append("model.stateful: false")
    if cfg.model.kind not in models.RECURRENT:
        needs.append("a recurrent model.kind (lstm, gru or simple_rnn)")
    if not needs:
        return None
    return ("this run's model can't stream: streaming feeds one number at a time and keeps the "
            "LSTM state, which reproduces training only for a model trained on whole masked "
            "prefixes with an output at every step; it needs " + ", ".join(needs)
            + " (see configs/stream.yaml)")


class Streamer:
    """Feeds one number per sequence at a time through a one-step copy of the model.

    The copy has the same weights, one timestep and a fixed batch (1 for a live stream; many
    sequences side by side for scoring, each on its own state). The state is carried explicitly
    through a stateless forward pass, which works the same on every backend (Keras's own JAX
    predict would drop a stateful layer's state). The step, echo included, is one compiled
    function (jax.jit, or tf.function on TensorFlow), so a pipe streams thousands of numbers a
    second; compiled=False runs it op by op, as a check.
    """

    def __init__(self, run: Run, *, batch_size: int = 1, compiled: bool = True):
        problem = stream_problem(run.cfg)
        if problem:
            raise RunError(problem)
        # the same layers and weights, one timestep at a time, with the state carried
        cfg = derive(run.cfg, {"model.stateful": True, "data.context": "window",
                               "data.window": 1}, source=f"{run.path / rundir.CONFIG}")
        self.run, self.lag, self.batch_size = run, cfg.data.lag, batch_size
        self.model = models.build_model(cfg, batch_size=batch_size)
        self.model.set_weights(run.model.get_weights())
        forward = stateless_forward(self.model)
        trainable = [v.value for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]

        def one_step(states, x):
            import keras

            y, states, _ = forward(trainable, non_trainable, states, x, False)
            probs = y[:, -1]
            return (keras.ops.argmax(probs, axis=-1), keras.ops.max(probs, axis=-1)), states

        # the weights are constants of the compiled step: only the state and X(t) go in
        self._step = compile_function(one_step) if compiled else one_step
        self.reset()

    def reset(self) -> None:
        """Start new sequences: zero state, nothing seen."""
        import keras

        self.states = [keras.ops.zeros(v.shape, v.dtype)
                       for v in rnn_state_variables(self.model)]
        self.seen = 0

    def step(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Feed X(t) of every sequence, (batch,) ids. Returns (echoed ids for X(t-lag), their
        probabilities), or None while t < lag and no echo exists."""
        x = models.model_input(np.asarray(values).reshape(self.batch_size, 1))
        out, self.states = self._step(self.states, x)
        self.seen += 1
        if self.seen <= self.lag:
            return None
        return np.asarray(out[0]), np.asarray(out[1])

    def push(self, value: int) -> tuple[int, float] | None:
        """One number of a live stream (batch 1)."""
        out = self.step(np.array([value]))
        return None if out is None else (int(out[0][0]), float(out[1][0]))


def compile_function(fn):
    """fn as one compiled program on the running backend: jax.jit or tf.function."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    return tf.function(fn, reduce_retracing=True)


def stream_accuracy(run: Run, *, sequences: int) -> dict[str, Any]:
    """Stream fresh held-out sequences one number at a time; score every echo of X(t-lag).

    The sequences run side by side, each on its own state, and are never seen whole.
    """
    from echo_cli.stats import wilson_interval
    from echo_cli.tasks.framing import generate_sequences, stream_rng

    cfg = run.cfg
    if cfg.data.source == "csv":  # the file's held-out part, never trained on
        from echo_cli.tasks.framing import csv_dataset

        seqs = csv_dataset(cfg.data).heldout[:sequences]
    else:
        seqs = generate_sequences(stream_rng(cfg.seed, "heldout"), count=sequences,
                                  length=cfg.data.length, n_unique=cfg.data.n_unique)
    streamer = Streamer(run, batch_size=len(seqs))
    correct = total = 0
    for t in range(cfg.data.length):
        out = streamer.step(seqs[:, t])
        if out is not None:
            correct += int((out[0] == seqs[:, t - cfg.data.lag]).sum())
            total += len(seqs)
    low, high = wilson_interval(correct, total)
    return {"sequences": len(seqs), "targets": total, "correct": correct,
            "accuracy": correct / total, "ci95_low": low, "ci95_high": high,
            "chance_accuracy": cfg.chance_accuracy}


def inspect_sequence(run: Run, values: list[str]) -> tuple[np.ndarray, str, Config]:
    """The sequence `inspect` shows, its origin, and the config to frame it with: the user's
    values (echo: integers; copy: the symbols to remember), or the first fresh held-out one.

    Raises:
        RunError: a model with no recurrent state, or values that cannot be used.
    """
    from echo_cli import tasks
    from echo_cli.analysis.probing import sequences

    cfg = run.cfg
    if cfg.model.kind not in models.RECURRENT:
        raise RunError(f"inspect is for recurrent state, and this run's model.kind is "
                       f"{cfg.model.kind}, which carries none; inspect an lstm, gru or "
                       f"simple_rnn run")
    if not values:
        return sequences(cfg, "heldout", 1)[0], "the first fresh held-out sequence", cfg
    if cfg.data.task == "adding":
        raise RunError("data.task: adding reads numbers, not integers; give no values and "
                       "inspect shows a fresh held-out sequence")
    ids = run.encode(values)
    if cfg.data.task == "copy":
        recall, delay = cfg.data.recall, cfg.data.delay
        if len(ids) != recall or not all(1 <= i <= tasks.COPY_CHOICES for i in ids):
            raise RunError(f"give the {recall} symbols to remember, each from 1 to "
                           f"{tasks.COPY_CHOICES}, got {len(ids)} values")
        seq = np.full(tasks.copy_length(delay, recall), tasks.BLANK)
        seq[:recall], seq[recall + delay - 1 :] = ids, tasks.MARKER
        return seq, f"your {recall} symbols", cfg
    if _frames(cfg, len(ids)):
        framed = derive(cfg, {"data.length": len(ids)}, source="your integers")
        return np.array(ids), f"your {len(ids)} integers", framed
    need = next((n for n in range(len(ids) + 1, 10 * cfg.data.length + 1) if _frames(cfg, n)),
                cfg.data.length)
    raise RunError(f"give at least {need} integers (windows of {timesteps(cfg.framing)}, a "
                   f"target {cfg.data.lag} back, in whole batches of "
                   f"{cfg.train.batch_size}), got {len(ids)}")


def _frames(cfg: Config, length: int) -> bool:
    try:
        derive(cfg, {"data.length": length}, source="your integers")
    except ConfigError:
        return False
    return True
