"""A trained run, loaded to be used: predict from your own values, inspect what it holds.

    run = load_run(Path("runs/lag1-20261129-120000"))
    rows = predict_rows(run, run.encode(["3", "1", "4", "1", "5", "9", "2", "6"]))

The run directory is read through store/rundir.py; the model is fed by training/evaluate.py;
what the values mean is the task's (tasks/<name>.py). This module imports Keras only when a
model is loaded.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echo_cli import models
from echo_cli.config.loading import ConfigError, derive
from echo_cli.config.schema import Config
from echo_cli.errors import EchoError
from echo_cli.store import rundir
from echo_cli.training import backends, startup
from echo_cli.training.evaluate import predictor_for


class RunError(EchoError, ValueError):
    """A run directory that cannot be used. The message is one line."""


@dataclass
class TrainedRun:
    """A run directory's config, its loaded model and any vocabulary (id -> original value)."""

    path: Path
    cfg: Config
    model: Any
    vocabulary: list | None = None

    def encode(self, tokens: list[str]) -> list[int]:
        """A user's values as ids (tasks.base.InputError for one the task cannot take)."""
        return self.cfg.task.encode(self.cfg, tokens, self.vocabulary)

    def decode(self, i: int) -> Any:
        return self.vocabulary[i] if self.vocabulary is not None else i


def checked_config(path: Path) -> Config:
    """A run directory's config.yaml, checked: the directory, its files, and that the config
    is the one the model was trained with.

    Raises:
        RunError: one line that says what is wrong and the fix.
    """
    if not path.is_dir():
        raise RunError(f"run directory {path} does not exist; give a directory that "
                       f"`echo-cli train` wrote, e.g. runs/lag1-<time>")
    if (path / rundir.SEEDS).is_dir():
        raise RunError(rundir.several_seeds_line(path))
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
    return cfg


def load_run(path: Path) -> TrainedRun:
    """Load config.yaml, model.keras (Keras safe mode, no pickles) and any vocabulary.

    Raises:
        RunError: a missing or incomplete directory, a bad config, or a model that won't load.
    """
    cfg = checked_config(path)
    vocabulary = rundir.read_vocabulary(path)
    symbols, key = cfg.signature.symbols, cfg.task.disagreement_keys(cfg)["outputs"]
    if vocabulary is not None and len(vocabulary) != symbols:
        raise RunError(f"{path / rundir.VOCABULARY} holds {len(vocabulary)} values but {key} "
                       f"is {symbols} in config.yaml; they must agree")
    if not zipfile.is_zipfile(path / rundir.MODEL):
        raise RunError(f"{path / rundir.MODEL} is not a Keras model file (a .keras file is a zip "
                       f"archive); train the run again")
    keras = backends.import_keras(cfg.train.backend)
    models.register_layers()  # the kinds' own layers, known to Keras's safe loading
    try:
        with startup.quiet_stderr():
            model = keras.saving.load_model(path / rundir.MODEL, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a damaged or foreign file
        raise RunError(f"{path / rundir.MODEL} won't load: {_load_problem(err)}") from None
    problem = disagreement(cfg, model)
    if problem:
        raise RunError(f"{path}: config.yaml and model.keras disagree: {problem}; restore "
                       f"config.yaml or train again")
    return TrainedRun(path=path, cfg=cfg, model=model, vocabulary=vocabulary)


def _load_problem(err: Exception) -> str:
    """Why Keras would not load a model.keras, in a line with its fix."""
    text = " ".join(str(err).split())
    if "safe_mode" in text or "Lambda" in text or "arbitrary code" in text:
        return ("refused by Keras safe mode: the model holds a Lambda layer or custom code, "
                "which echo-cli never runs; train the run again with echo-cli")
    return text[:160] if text else type(err).__name__


def disagreement(cfg: Config, model) -> str | None:
    """How a loaded model disagrees with the config beside it, naming the key; None if the
    model is what the config builds (shapes, layers, units, state, encoding)."""
    sig, keys = cfg.signature, cfg.task.disagreement_keys(cfg)
    layers = {layer.name: layer for layer in model.layers}
    out = model.output_shape
    if out[-1] != (sig.outputs or 1):
        return (f"{keys['outputs']} makes {sig.outputs or 1} outputs in config.yaml, but the "
                f"model predicts {out[-1]}")
    if (len(out) == 3) != sig.per_step:
        wanted, has = (("an output per step", "one output per sample") if sig.per_step
                       else ("one output per sample", "an output per step"))
        return (f"{keys['per_step']} asks for {wanted} in config.yaml, but the model has "
                f"{has}")
    if model.input_shape[1] != sig.steps:
        return (f"{keys['steps']} makes {sig.steps} input steps in config.yaml, but the model "
                f"takes {model.input_shape[1]}")
    return _body_disagreement(cfg, model, layers) or _input_disagreement(cfg, layers, keys)


def _body_disagreement(cfg: Config, model, layers: dict[str, Any]) -> str | None:
    m, kind = cfg.model, cfg.kind
    if kind.body not in layers:
        found = next((k.name for k in models.KINDS.values() if k.body in layers), "another kind")
        return f"model.kind is {m.kind} in config.yaml, but the model is {found}"
    body = layers[kind.body]
    units = getattr(body, "units", None) or getattr(body, "filters", None)
    if units != m.units:
        return f"model.units is {m.units} in config.yaml, but the model has {units}"
    if bool(getattr(body, "stateful", False)) != m.stateful:
        return (f"model.stateful is {str(m.stateful).lower()} in config.yaml, but the model is "
                f"{'stateless' if m.stateful else 'stateful'}")
    if m.stateful and model.input_shape[0] != cfg.train.batch_size:
        return (f"train.batch_size is {cfg.train.batch_size} in config.yaml, but the stateful "
                f"model runs batches of {model.input_shape[0]}")
    return None


def _input_disagreement(cfg: Config, layers: dict[str, Any], keys: dict[str, str]) -> str | None:
    m, sig = cfg.model, cfg.signature
    if sig.symbols is None:
        return None
    encoding = "onehot" if "one_hot" in layers else "embedding"
    if encoding != m.encoding:
        return f"model.encoding is {m.encoding} in config.yaml, but the model uses {encoding}"
    if encoding == "embedding" and layers["embedding"].output_dim != m.embedding_dim:
        return (f"model.embedding_dim is {m.embedding_dim} in config.yaml, but the model has "
                f"{layers['embedding'].output_dim}")
    masks = "mask" in layers or getattr(layers.get("embedding"), "mask_zero", False)
    if masks != sig.mask:
        return (f"{keys['mask']} {'masks' if sig.mask else 'does not mask'} missing steps in "
                f"config.yaml, but the model " + ("masks them" if masks else "does not"))
    return None


def predict_rows(run: TrainedRun, ids: list[int]) -> list[dict[str, Any]]:
    """The task's rows for `predict`: one per input position.

    Raises:
        RunError: the task has no `predict`.
        InputError: values the task cannot use.
    """
    problem = run.cfg.task.predict_problem(run.cfg)
    if problem:
        raise RunError(problem)
    return run.cfg.task.predict_rows(run.cfg, ids, predictor_for(run.model, run.cfg),
                                     run.decode)


def inspect_sequence(run: TrainedRun, values: list[str]):
    """The sequence `inspect` shows, its origin, and the config to read it with: the user's
    values, or the first fresh held-out sequence.

    Raises:
        RunError: a model with no state inspect can recompute.
        InputError: values the task cannot show.
    """
    cfg = run.cfg
    if cfg.kind.cell is None:
        raise RunError(f"inspect is for recurrent state, and this run's model.kind is "
                       f"{cfg.model.kind}, which carries none that inspect can recompute; "
                       f"inspect a {models.words(models.having('cell'))} run")
    if not values:
        return cfg.task.sequences(cfg, "heldout", 1)[0], "the first fresh held-out sequence", cfg
    seq, origin, updates = cfg.task.inspect_input(cfg, values, run.vocabulary)
    return seq, origin, derive(cfg, updates, source="your values") if updates else cfg
