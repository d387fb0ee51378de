"""Models and compiled steps kept warm between the runs of one process: a sweep worker's.

    warm.enable()                      # the sweep worker turns it on; `echo-cli train` does not
    model, reused = warm.model(cfg)    # built, or the kept one holding cfg's initial weights
    warm.compile(model, cfg)           # compiled, or the kept optimizer reset to cfg's values
    engine = warm.engine(model, make)  # the model's JaxEngine, made once
    predictor = warm.predictor(model, key, make)   # a compiled predictor of it, made once

A run whose model has the shapes of an earlier run in the process (the same config but for
what only changes values: the seed, train.learning_rate, the epochs, the targets, eval) takes
the earlier run's model instead of building one, and with it the compiled train step of its
JaxEngine and its compiled predictors (evaluate.predictor). What a run of its own would start
from is put into it first: every variable as build_model made it, the seed's initial weights
drawn over them (factory.draw_weights), a fresh Adam (step 0, zero moments) at the run's
learning rate, which is a variable of the optimizer and so a value, not a constant, of the
compiled step. So a sweep over seeds, learning rates or epochs compiles once per worker, and
each run is the run a fresh process would train (tests/test_warm.py checks that it is, number
for number). Only JAX: under TensorFlow every run builds and compiles as before.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from echo_cli.config.schema import Config
from echo_cli.models import factory

KEEP = 4  # models kept, the most recently used; a sweep's grid rarely has more shapes
# what changes only the values a run starts from or how long it trains, not a compiled step
VALUES_ONLY = {"name", "description", "seed", "eval"}
TRAIN_VALUES_ONLY = {"learning_rate", "epochs", "target_accuracy", "target_loss",
                     "validate_every", "stop_at_target", "checkpoint_every", "seeds"}

_enabled = False
reused = 0  # runs of this process that took a kept model
_kept: OrderedDict[str, _Kept] = OrderedDict()  # what is dropped from here is freed


@dataclass
class _Kept:
    """A kept model and what was compiled for it; they go together."""

    model: Any
    fresh: list[np.ndarray]  # every variable as build_model made it
    compiled: bool = False
    engine: Any = None  # its JaxEngine, made at its first run's first chunk
    predictors: dict[tuple, Any] = field(default_factory=dict)  # by the shapes they serve


def _entry(model) -> _Kept | None:
    """The kept entry of this model, or None for a model that is not kept."""
    return next((kept for kept in _kept.values() if kept.model is model), None)


def enable() -> None:
    """Keep models and their compiled steps for the rest of this process (a sweep worker)."""
    global _enabled
    _enabled = True


def key(cfg: Config) -> str:
    """What a model and its compiled steps depend on: the config without VALUES_ONLY."""
    raw = cfg.model_dump(mode="json")
    raw = {k: v for k, v in raw.items() if k not in VALUES_ONLY}
    raw["train"] = {k: v for k, v in raw["train"].items() if k not in TRAIN_VALUES_ONLY}
    return json.dumps(raw, sort_keys=True)


def model(cfg: Config, build: Callable[[Config], Any]) -> tuple[Any, bool]:
    """The run's model, uncompiled or kept, holding exactly what build(cfg) would; and whether
    it was kept from an earlier run."""
    import keras

    if not _enabled or keras.backend.backend() != "jax":
        return build(cfg), False
    k = key(cfg)
    kept = _kept.get(k)
    if kept is None:
        made = build(cfg)
        _kept[k] = _Kept(made, [np.array(v.value) for v in made.weights])
        while len(_kept) > KEEP:
            _kept.popitem(last=False)
        return made, False
    global reused
    reused += 1
    _kept.move_to_end(k)
    for variable, value in zip(kept.model.weights, kept.fresh, strict=True):
        variable.assign(value)
    factory.draw_weights(kept.model, cfg.model, seed=cfg.seed)
    factory.reset_states(kept.model)
    return kept.model, True


def compile(model, cfg: Config, compile_model: Callable[[], None]) -> None:  # noqa: A001
    """Compile a model (compile_model()) the first time; a kept model that was compiled keeps
    its optimizer, reset to what compiling makes: step 0, zero moments, cfg's learning rate.
    A new optimizer would be a new object, and the kept compiled step holds the old one."""
    kept = _entry(model)
    if kept is None or not kept.compiled:
        compile_model()
        if kept is not None:
            kept.compiled = True
        return
    for variable in model.optimizer.variables:
        if variable is model.optimizer._learning_rate:  # noqa: SLF001 - Adam's own variable
            variable.assign(np.asarray(cfg.train.learning_rate, variable.dtype))
        else:
            variable.assign(np.zeros(variable.shape, variable.dtype))
    model.reset_metrics()


def engine(model, make: Callable[[], Any]) -> Any:
    """The JaxEngine of a kept model, made once; any other model's, made now."""
    kept = _entry(model)
    if kept is None or not kept.compiled:
        return make()
    if kept.engine is None:
        kept.engine = make()
    return kept.engine


def predictor(model, made_for: tuple, make: Callable[[], Any]) -> Any:
    """A kept model's predictor for `made_for` (its shapes), made once; any other model's,
    made now."""
    kept = _entry(model)
    if kept is None or not kept.compiled:
        return make()
    if made_for not in kept.predictors:
        kept.predictors[made_for] = make()
    return kept.predictors[made_for]
