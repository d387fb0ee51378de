"""The config schema: one pydantic model per section, and the checks across sections.

    Config.model_validate({"data": {"task": "copy", "delay": 50}})   # stateless, batch 32
    cfg.dump()                                                        # only the task's keys

Each task reads its own data keys (tasks.TASK_KEYS); a key set for another task is refused
with the task it belongs to. Memory tasks (copy, adding) default to what their papers train
with: stateless, batches of 32, gradients clipped to norm 1. config.py loads and validates;
this module imports no TensorFlow.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from echo_cli import tasks
from echo_cli.errors import EchoError
from echo_cli.tasks import framing as framing

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
RECURRENT = ("lstm", "gru", "simple_rnn")
# Defaults a memory task changes, when the config does not set them: its papers' recipe.
MEMORY_DEFAULTS = {("model", "stateful"): False, ("train", "batch_size"): 32,
                   ("train", "clipnorm"): 1.0}


class ConfigError(EchoError, ValueError):
    """A config that cannot be run. The message is one line, ready to print."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any, info: ValidationInfo) -> Any:
        """No control characters in strings: a terminal escape must not reach the screen."""
        if isinstance(value, str):
            for i, char in enumerate(value):
                if unicodedata.category(char) == "Cc" and char not in "\t\n":
                    raise ValueError(f"holds a control character ({char!r} at position {i}); "
                                     f"remove it")
        return value


class DataConfig(_Section):
    task: Literal["echo", "copy", "adding"] = Field(
        "echo", description="echo: X(t-lag) from a window; copy: copy memory; adding: the "
                            "adding problem")
    source: Literal["random", "csv"] = Field(
        "random", description="echo: random integers, or csv: a column of your own file"
    )
    path: str | None = Field(None, max_length=4096,
                             description="echo, data.source csv: the CSV file")
    column: str | None = Field(None, max_length=200,
                               description="echo, data.source csv: the column to read")
    heldout_fraction: float = Field(
        0.2, gt=0, lt=1, description="echo, data.source csv: the last part of the file, held out"
    )
    n_unique: int = Field(100, ge=2, description="echo: integers 0 .. n_unique-1")
    length: int = Field(25, ge=1, description="echo: integers per sequence; adding: T, its steps")
    lag: int = Field(1, ge=0, description="echo: the target is X(t - lag)")
    window: int = Field(5, ge=1, description="echo: context timesteps X(t-window+1) .. X(t)")
    missing: Literal["drop", "pad", "mask"] = Field(
        "drop", description="echo: rows whose window starts before the sequence: drop | pad | mask"
    )
    context: Literal["window", "full"] = Field(
        "window", description="echo: window: the last `window` steps; full: the sequence so far"
    )
    target: Literal["value", "sequence"] = Field(
        "value", description="echo: value: one X(t-lag) per row; sequence: X(p-lag) at every p"
    )
    delay: int = Field(50, ge=1, description="copy: T, the blank steps between the symbols "
                                             "and the recall")
    recall: int = Field(10, ge=1, description="copy: the symbols to remember")

    @model_validator(mode="after")
    def _keys_of_this_task(self) -> DataConfig:
        for key in self.model_fields_set - {"task"}:
            if key not in tasks.TASK_KEYS[self.task]:
                raise ValueError(f"data.{key} belongs to data.task: {tasks.owner(key)}; remove "
                                 f"it, since this config has data.task: {self.task}")
        return self


class ModelConfig(_Section):
    kind: Literal["lstm", "gru", "simple_rnn", "mlp", "conv1d", "tcn"] = Field(
        "lstm", description="lstm | gru | simple_rnn | mlp (flattened input) | conv1d (causal) "
                            "| tcn (residual dilated causal convolutions)"
    )
    encoding: Literal["onehot", "embedding"] = Field(
        "onehot", description="onehot: the tutorial's vectors; embedding: learned, for large n"
    )
    embedding_dim: int = Field(32, ge=1, description="model.encoding embedding: vector size")
    units: int = Field(50, ge=1, description="hidden units (channels for conv1d and tcn)")
    stateful: bool = Field(True, description="carry state from batch to batch within a sequence")
    kernel_size: int = Field(8, ge=2, description="tcn: the convolution kernel; levels are "
                                                  "added until the receptive field covers the "
                                                  "sequence")


class TrainConfig(_Section):
    epochs: int = Field(2000, ge=1, description="echo: one epoch = one fresh sequence; copy, "
                                                "adding: one batch of fresh sequences (one "
                                                "update)")
    batch_size: int = Field(5, ge=1, description="samples per weight update")
    learning_rate: float = Field(0.001, gt=0, description="Adam's step size")
    clipnorm: float | None = Field(None, gt=0, description="clip each gradient to this norm "
                                                            "(None: no clipping)")
    target_accuracy: float | None = Field(
        None, gt=0, le=1, description="stop once validation accuracy reaches this (None: never)"
    )
    target_loss: float | None = Field(
        None, gt=0, description="copy, adding: stop once validation loss is at most this"
    )
    validate_every: int = Field(
        50, ge=1, description="epochs between validation checks when a target is set"
    )
    backend: Literal["auto", "tensorflow", "jax"] = Field(
        "auto", description="Keras backend; auto: $KERAS_BACKEND, else the fastest installed "
                            "for the engine (jax for fast, tensorflow for tutorial)"
    )


class EvalConfig(_Section):
    sequences: int = Field(1000, ge=1, description="fresh held-out sequences, from a separate seed")
    examples: int = Field(3, ge=0, description="decoded held-out sequences to print")
    validation_sequences: int = Field(
        100, ge=1, description="fresh sequences for a train target, apart from held-out"
    )


class Config(_Section):
    name: str = Field("lag1", min_length=1, max_length=100, pattern=NAME_PATTERN,
                      description="names the run directory: letters, digits, _ . -")
    description: str = Field("", max_length=2000,
                             description="what the experiment tests, for results tables")
    seed: int = Field(1, ge=0, le=2**32 - 1, description="all randomness derives from it")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="before")
    @classmethod
    def _memory_defaults(cls, raw: Any) -> Any:
        """A memory task's own defaults, for the keys the config leaves out."""
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            return raw
        if raw["data"].get("task") not in ("copy", "adding"):
            return raw
        raw = dict(raw)
        for (section, key), value in MEMORY_DEFAULTS.items():
            part = raw.get(section, {})
            if isinstance(part, dict) and key not in part:
                raw[section] = {**part, key: value}
        return raw

    @model_validator(mode="after")
    def _check_combinations(self) -> Config:
        if self.data.task == "echo":
            _check_echo(self)
        else:
            _check_memory(self)
        return self

    def dump(self) -> dict[str, Any]:
        """The config as plain data, with only the data keys of its task (config.yaml)."""
        out = self.model_dump()
        out["data"] = {k: v for k, v in out["data"].items()
                       if k == "task" or k in tasks.TASK_KEYS[self.data.task]}
        return out

    @property
    def framing(self) -> framing.Framing:
        """How the echo frames a sequence into samples (echo only)."""
        d = self.data
        return framing.Framing(length=d.length, lag=d.lag, window=d.window, missing=d.missing,
                               context=d.context, target=d.target,
                               batch_size=self.train.batch_size)

    @property
    def steps(self) -> int:
        """Timesteps the model reads per sample."""
        if self.data.task == "copy":
            return tasks.copy_length(self.data.delay, self.data.recall)
        if self.data.task == "adding":
            return self.data.length
        return framing.timesteps(self.framing)

    @property
    def n_symbols(self) -> int | None:
        """Symbols the model reads and predicts (None for the adding problem's numbers)."""
        return {"echo": self.data.n_unique, "copy": tasks.COPY_SYMBOLS}.get(self.data.task)

    @property
    def per_step_output(self) -> bool:
        return self.data.task == "copy" or (self.data.task == "echo"
                                            and self.data.target == "sequence")

    @property
    def chance_accuracy(self) -> float:
        """Chance for the task's accuracy figure: 1/n for the echo, 1/8 for each recalled
        symbol, and for adding the share within 0.04 that always predicting 1 gets."""
        return {"echo": 1.0 / self.data.n_unique, "copy": 1.0 / tasks.COPY_CHOICES,
                "adding": tasks.ADDING_CHANCE}[self.data.task]

    @property
    def baseline_loss(self) -> float:
        """What a model with no memory scores: ln n (echo), 10·ln 8/(T+20) (copy), 1/6 (adding)."""
        import math

        d = self.data
        return {"echo": lambda: math.log(d.n_unique),
                "copy": lambda: tasks.copy_baseline(delay=d.delay, recall=d.recall),
                "adding": lambda: tasks.ADDING_BASELINE}[d.task]()

    def warnings(self) -> list[str]:
        """Plain-language notes about a config that runs but may surprise its user."""
        if self.data.task != "echo":
            return []
        notes = []
        d = self.data
        if d.context == "window" and d.lag >= d.window:
            notes.append(
                f"data.lag={d.lag} ≥ data.window={d.window}: the target X(t-{d.lag}) is outside "
                f"the window the model sees, so expect chance accuracy "
                f"(1/{d.n_unique} = {self.chance_accuracy:.3g}). This is the beginner's mistake."
            )
        plan = self.framing
        trimmed = framing.trimmed_rows(plan)
        if trimmed:
            notes.append(
                f"each sequence has {framing.rows_per_sequence(plan) + trimmed} samples; the "
                f"oldest {trimmed} {'is' if trimmed == 1 else 'are'} trimmed so that they fill "
                f"whole batches of train.batch_size={plan.batch_size}"
            )
        return notes


def _check_kind(cfg: Config) -> None:
    """What every task asks of model.kind: state needs a recurrent layer, per-step outputs
    need a layer that keeps the steps."""
    kind = cfg.model.kind
    if kind not in RECURRENT and cfg.model.stateful:
        raise ValueError(f"model.stateful: true needs a recurrent model.kind (lstm, gru or "
                         f"simple_rnn); {kind} has no state to carry")
    if kind == "mlp" and cfg.per_step_output:
        what = ("data.task: copy" if cfg.data.task == "copy" else "data.target: sequence")
        raise ValueError(f"{what} needs an output per timestep; mlp flattens the input, so "
                         f"use lstm, gru, simple_rnn, conv1d or tcn")


def _check_echo(cfg: Config) -> None:
    d, t = cfg.data, cfg.train
    if d.context == "window" and d.window > d.length:
        raise ValueError(f"data.window must be ≤ data.length ({d.length}), got {d.window}; "
                         f"a window cannot be longer than the sequence")
    if d.lag >= d.length:
        raise ValueError(f"data.lag must be < data.length ({d.length}), got {d.lag}; "
                         f"no row of a {d.length}-integer sequence has a target {d.lag} steps "
                         f"back")
    if d.source == "csv" and (not d.path or not d.column):
        raise ValueError("data.source: csv needs data.path (a CSV file) and data.column "
                         "(the column of integers or values to echo)")
    if d.source == "csv" and t.target_accuracy is not None:
        raise ValueError("train.target_accuracy needs fresh validation sequences, so it "
                         "works with data.source: random only")
    if t.target_loss is not None:
        raise ValueError("train.target_loss is for data.task: copy or adding; the echo stops "
                         "at train.target_accuracy")
    _check_kind(cfg)
    if cfg.model.kind not in RECURRENT and d.missing == "mask":
        raise ValueError(f"data.missing: mask needs a recurrent model.kind; {cfg.model.kind} "
                         f"cannot skip steps, use data.missing: pad")
    if d.context == "full" and d.missing == "drop":
        raise ValueError("data.context: full needs data.missing: pad or mask; with drop only "
                         "the last row of each sequence would be kept")
    rows = framing.candidate_rows(cfg.framing)
    if rows < 1:
        raise ValueError(f"no row of a {d.length}-integer sequence has both a full window of "
                         f"{d.window} and a target {d.lag} steps back; lower data.window or "
                         f"data.lag, or use data.missing: pad")
    if t.batch_size > rows:
        fits = ", ".join(str(k) for k in range(1, rows + 1) if rows % k == 0)
        raise ValueError(f"train.batch_size must be ≤ {rows}, the samples per sequence, got "
                         f"{t.batch_size}; batch sizes that divide {rows} exactly: {fits}")


def _check_memory(cfg: Config) -> None:
    d, m = cfg.data, cfg.model
    if m.stateful:
        raise ValueError(f"data.task: {d.task} trains on batches of independent sequences, so "
                         f"model.stateful must be false")
    _check_kind(cfg)
    if d.task == "adding" and d.length < 2:
        raise ValueError(f"data.length must be ≥ 2 for data.task: adding (a marker in each "
                         f"half), got {d.length}")
    if d.task == "adding" and m.encoding == "embedding":
        raise ValueError("model.encoding: embedding reads symbols; data.task: adding reads "
                         "numbers, so leave model.encoding at onehot")
    if d.task == "adding" and cfg.train.target_accuracy is not None:
        raise ValueError("data.task: adding is scored by its loss: use train.target_loss "
                         "(the validation mean squared error to stop at)")
