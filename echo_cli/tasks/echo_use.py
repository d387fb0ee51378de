"""Using a trained echo: your own integers in, X(t-lag) predicted, a sequence to inspect.

    ids = encode(cfg, ["3", "1", "4"], vocabulary=None)      # checked against data.n_unique
    rows = predict_rows(cfg, ids, predictor, decode)           # one row per input position
    seq, origin, updates = inspect_input(cfg, ids)             # framed as in training

The model is fed by the caller's predictor (training/evaluate.py), so nothing here imports
Keras.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

import echo_cli.tasks.framing as framing
from echo_cli.models import cells
from echo_cli.models.base import MISSING, model_ids
from echo_cli.tasks.base import InputError, clipped

INTEGER = re.compile(r"[+-]?[0-9]+")  # plain ASCII digits: not '٣', '1_0' or ' 3'
DIGITS = 18  # longer than this is never an id


def encode(cfg, tokens: list[str], vocabulary: list | None) -> list[int]:
    """Command-line tokens to ids, checking every one.

    Raises:
        InputError: a token that is not an integer in range (or not in the vocabulary).
    """
    if vocabulary is not None:
        index = {str(v): i for i, v in enumerate(vocabulary)}
        bad = [tok for tok in tokens if tok not in index]
        if bad:
            shown = ", ".join(str(v) for v in vocabulary[:8])
            raise InputError(f"{clipped(bad[0])} is not in this run's vocabulary of "
                             f"{len(vocabulary)} values ({shown}, ...)")
        return [index[tok] for tok in tokens]
    n = cfg.data.n_unique
    ids = []
    for tok in tokens:
        if not INTEGER.fullmatch(tok):
            raise InputError(f"{clipped(tok)} is not an integer; give integers from 0 to "
                             f"{n - 1}")
        if len(tok.lstrip("+-")) > DIGITS:
            raise InputError(f"{clipped(tok)}: integer too large (max {n - 1}, the integers "
                             f"this run was trained on, data.n_unique={n})")
        value = int(tok)
        if not 0 <= value < n:
            raise InputError(f"{value} is outside 0 .. {n - 1}, the integers this run was "
                             f"trained on (data.n_unique={n})")
        ids.append(value)
    return ids


def _plan(cfg, length: int) -> framing.Framing:
    """Frame an input of any length as in training; a full context is a window of length."""
    d = cfg.data
    window = d.window if d.context == "window" else d.length
    return framing.Framing(length=length, lag=d.lag, window=window, missing=d.missing,
                           context="window", target=d.target, batch_size=1)


def predict_rows(cfg, ids: list[int], predictor, decode) -> list[dict[str, Any]]:
    """One row per input position: input, expected X(t-lag), prediction and its probability.

    Rows that cannot be predicted (no full window, or t < lag with no target) say why.

    Raises:
        InputError: fewer integers than one window.
    """
    d = cfg.data
    plan = _plan(cfg, len(ids))
    steps = plan.window
    need = max(steps if d.missing == "drop" else 1, d.lag + 1)
    if len(ids) < need:
        raise InputError(f"give at least {need} integers (one window of {steps} with a target "
                         f"{d.lag} back), got {len(ids)}")
    framed = framing.frame(np.array([ids]), plan)
    x = framed.x
    batch = cfg.train.batch_size if cfg.model.stateful else 1
    pad = (-x.shape[1]) % batch  # a stateful model runs whole batches; extra rows are empty
    if pad:
        x = np.concatenate([x, np.full((1, pad, steps), MISSING)], axis=1)
    outputs = predictor(1)(model_ids(x))
    pred, prob = outputs.argmax(axis=-1)[0], outputs.max(axis=-1)[0]
    pred, prob = pred[: len(framed.t)], prob[: len(framed.t)]
    if d.target == "sequence":  # the last position of row t predicts X(t - lag)
        pred, prob = pred[:, -1], prob[:, -1]
    at = {int(t): i for i, t in enumerate(framed.t)}
    rows = []
    for t, value in enumerate(ids):
        row: dict[str, Any] = {"t": t, "input": decode(value), "expected": None,
                               "predicted": None, "probability": None, "match": None}
        if t >= d.lag:
            row["expected"] = decode(ids[t - d.lag])
        if t in at:
            i = at[t]
            row.update(predicted=decode(int(pred[i])), probability=float(prob[i]),
                       match=bool(ids[t - d.lag] == int(pred[i])))
        else:
            row["note"] = "no target yet" if t < d.lag else f"cold start: window of {steps}"
        rows.append(row)
    return rows


def frames(cfg, length: int) -> bool:
    """True when a sequence of `length` frames as the config frames its own (whole batches)."""
    d = cfg.data
    if d.lag >= length or (d.context == "window" and d.window > length):
        return False
    plan = framing.Framing(length=length, lag=d.lag, window=d.window, missing=d.missing,
                           context=d.context, target=d.target, batch_size=cfg.train.batch_size)
    rows = framing.candidate_rows(plan)
    return rows >= 1 and cfg.train.batch_size <= rows


def inspect_input(cfg, ids: list[int]) -> tuple[np.ndarray, str, dict[str, Any]]:
    """Your integers as inspect shows them, and the config keys to frame them with.

    Raises:
        InputError: too few integers to frame as in training.
    """
    if frames(cfg, len(ids)):
        return np.array(ids), f"your {len(ids)} integers", {"data.length": len(ids)}
    need = next((n for n in range(len(ids) + 1, 10 * cfg.data.length + 1) if frames(cfg, n)),
                cfg.data.length)
    raise InputError(f"give at least {need} integers (windows of "
                     f"{framing.timesteps(_plan(cfg, cfg.data.length))}, a target "
                     f"{cfg.data.lag} back, in whole batches of {cfg.train.batch_size}), got "
                     f"{len(ids)}")


def state_columns(model, cfg, p: framing.Framing, seqs: np.ndarray) -> cells.States:
    """The state at the end of the window that ends at X(t), fed as in training (a
    stateful model starts each window from the state the window batch_size rows earlier
    left); for a full masked context, one pass through the sequence."""
    d = cfg.data
    cell, masked = cells.Cell.of(model), d.missing == "mask"
    if d.context == "full" and not cfg.model.stateful and masked:
        xs, mask = cells.Cell.inputs(model, seqs, masked=masked)
        t = framing.frame(seqs[:1], p).t
        return cells.States(t=t, trace=cells.columns(cell.run(xs, mask=mask), t),
                            values=seqs)
    framed = framing.frame(seqs, p)
    batch, finals = p.batch_size, []
    for r in range(framing.rows_per_sequence(p)):
        xs, mask = cells.Cell.inputs(model, framed.x[:, r], masked=masked)
        start = finals[r - batch] if cfg.model.stateful and r >= batch else None
        run = cell.run(xs, mask=mask, h0=None if start is None else start.h[:, -1],
                       c0=None if start is None or start.c is None else start.c[:, -1])
        finals.append(cells.columns(run, np.array([xs.shape[1] - 1])))
    return cells.States(t=framed.t, trace=cells.stack(finals), values=seqs)
