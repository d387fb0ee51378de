"""Experiment configuration: one schema, YAML loading, dotted overrides, one validation pass.

Precedence is defaults < file < command line, then validation:

    cfg = load_config("configs/lag1.yaml", overrides=["train.epochs=50"])
    cfg.data.window  # 5

Every problem raises ConfigError with one line that names the key, what was received
and what was expected. This module imports no TensorFlow.
"""

from __future__ import annotations

import difflib
import reprlib
import unicodedata
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from echo_cli import data as framing
from echo_cli.errors import EchoError
from echo_cli.yamlio import describe_error, parse_yaml, read_yaml_file

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 60, 60, 6, 6, 2
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


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
    source: Literal["random", "csv"] = Field(
        "random", description="random: fresh random integers; csv: a column of your own file"
    )
    path: str | None = Field(None, max_length=4096,
                             description="data.source csv: the CSV file")
    column: str | None = Field(None, max_length=200,
                               description="data.source csv: the column to read")
    heldout_fraction: float = Field(
        0.2, gt=0, lt=1, description="data.source csv: the last part of the file, held out"
    )
    n_unique: int = Field(100, ge=2, description="integers 0 .. n_unique-1")
    length: int = Field(25, ge=1, description="integers per random sequence")
    lag: int = Field(1, ge=0, description="the target is X(t - lag)")
    window: int = Field(5, ge=1, description="context timesteps X(t-window+1) .. X(t)")
    missing: Literal["drop", "pad", "mask"] = Field(
        "drop", description="rows whose window starts before the sequence: drop | pad | mask"
    )
    context: Literal["window", "full"] = Field(
        "window", description="window: the last `window` steps; full: the whole sequence so far"
    )
    target: Literal["value", "sequence"] = Field(
        "value", description="value: one X(t-lag) per row; sequence: X(p-lag) at every position p"
    )


class ModelConfig(_Section):
    kind: Literal["lstm", "gru", "simple_rnn", "mlp", "conv1d"] = Field(
        "lstm", description="lstm | gru | simple_rnn | mlp (flattened window) | conv1d (causal)"
    )
    encoding: Literal["onehot", "embedding"] = Field(
        "onehot", description="onehot: the tutorial's vectors; embedding: learned, for large n"
    )
    embedding_dim: int = Field(32, ge=1, description="model.encoding embedding: vector size")
    units: int = Field(50, ge=1, description="hidden units of the recurrent layer")
    stateful: bool = Field(True, description="carry state from batch to batch within a sequence")


class TrainConfig(_Section):
    epochs: int = Field(2000, ge=1, description="one epoch = one freshly generated sequence")
    batch_size: int = Field(5, ge=1, description="samples per weight update")
    learning_rate: float = Field(0.001, gt=0, description="Adam's step size")
    target_accuracy: float | None = Field(
        None, gt=0, le=1, description="stop once validation accuracy reaches this (None: never)"
    )
    validate_every: int = Field(
        50, ge=1, description="epochs between validation checks when target_accuracy is set"
    )
    backend: Literal["auto", "tensorflow", "jax"] = Field(
        "auto", description="Keras backend; auto: $KERAS_BACKEND, else tensorflow"
    )


class EvalConfig(_Section):
    sequences: int = Field(1000, ge=1, description="fresh held-out sequences, from a separate seed")
    examples: int = Field(3, ge=0, description="decoded held-out sequences to print")
    validation_sequences: int = Field(
        100, ge=1, description="fresh sequences for train.target_accuracy, apart from held-out"
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

    @model_validator(mode="after")
    def _check_combinations(self) -> Config:
        d = self.data
        if d.context == "window" and d.window > d.length:
            raise ValueError(
                f"data.window must be ≤ data.length ({d.length}), got {d.window}; "
                f"a window cannot be longer than the sequence"
            )
        if d.lag >= d.length:
            raise ValueError(
                f"data.lag must be < data.length ({d.length}), got {d.lag}; "
                f"no row of a {d.length}-integer sequence has a target {d.lag} steps back"
            )
        if d.source == "csv" and (not d.path or not d.column):
            raise ValueError("data.source: csv needs data.path (a CSV file) and data.column "
                             "(the column of integers or values to echo)")
        if d.source == "csv" and self.train.target_accuracy is not None:
            raise ValueError("train.target_accuracy needs fresh validation sequences, so it "
                             "works with data.source: random only")
        kind = self.model.kind
        if kind in ("mlp", "conv1d"):
            if self.model.stateful:
                raise ValueError(f"model.stateful: true needs a recurrent model.kind (lstm, gru "
                                 f"or simple_rnn); {kind} has no state to carry")
            if d.missing == "mask":
                raise ValueError(f"data.missing: mask needs a recurrent model.kind; {kind} "
                                 f"cannot skip steps, use data.missing: pad")
        if kind == "mlp" and d.target == "sequence":
            raise ValueError("data.target: sequence needs an output per timestep; mlp flattens "
                             "the window, so use lstm, gru, simple_rnn or conv1d")
        if d.context == "full" and d.missing == "drop":
            raise ValueError(
                "data.context: full needs data.missing: pad or mask; with drop only the last "
                "row of each sequence would be kept"
            )
        rows = framing.candidate_rows(self.framing)
        if rows < 1:
            raise ValueError(
                f"no row of a {d.length}-integer sequence has both a full window of {d.window} "
                f"and a target {d.lag} steps back; lower data.window or data.lag, "
                f"or use data.missing: pad"
            )
        b = self.train.batch_size
        if b > rows:
            fits = ", ".join(str(k) for k in range(1, rows + 1) if rows % k == 0)
            raise ValueError(
                f"train.batch_size must be ≤ {rows}, the samples per sequence, got {b}; "
                f"batch sizes that divide {rows} exactly: {fits}"
            )
        return self

    @property
    def framing(self) -> framing.Framing:
        d = self.data
        return framing.Framing(
            length=d.length,
            lag=d.lag,
            window=d.window,
            missing=d.missing,
            context=d.context,
            target=d.target,
            batch_size=self.train.batch_size,
        )

    @property
    def chance_accuracy(self) -> float:
        return 1.0 / self.data.n_unique

    def warnings(self) -> list[str]:
        """Plain-language notes about a config that runs but may surprise its user."""
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


# ---------------------------------------------------------------------------------------------
# loading: defaults < file < --set, then one validation pass

MAX_SET_CHARS = 10_000  # a --set value longer than this is a mistake (or an attack)


def clip(text: str, limit: int = 80) -> str:
    """text, cut to `limit` characters with an ellipsis: for names and keys in messages."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut(value: Any, limit: int = 60) -> str:
    """A short repr of a value for an error message: never the whole of a huge input."""
    return _REPR.repr(value)[:limit] + ("…" if len(_REPR.repr(value)) > limit else "")


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; give the path to a YAML file, "
                          f"for example configs/lag1.yaml")
    if path.is_dir():
        raise ConfigError(f"config path {path} is a directory; give a YAML file inside it, "
                          f"for example {path / 'config.yaml'}")
    raw, problem = read_yaml_file(path)
    if problem:
        raise ConfigError(f"{path} {problem}")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path} must hold a YAML mapping of keys (name:, data:, model:, ...), "
            f"got a {type(raw).__name__}"
        )
    return raw


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Set one dotted `KEY=VALUE` into raw, parsing VALUE as a YAML scalar.

    Raises:
        ConfigError: the assignment has no `=`, an empty key, or walks into a non-mapping.
    """
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"--set expects KEY=VALUE, for example train.epochs=50, got {cut(assignment)}"
        )
    if len(assignment) > MAX_SET_CHARS:
        raise ConfigError(f"--set {key}=... is {len(assignment):,} characters long; a value is "
                          f"at most {MAX_SET_CHARS:,}")
    try:
        value = parse_yaml(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {cut(assignment)}: {cut(text)} is not a valid YAML value"
                          f"{describe_error(err)}") from None
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"--set {assignment}: {where} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_known_keys(annotation, f"{dotted}."))
    return keys


def known_keys() -> list[str]:
    """Every dotted key of the schema, sections included."""
    return _known_keys(Config)


def leaf_keys() -> list[str]:
    """Every dotted key that holds a value (not a section)."""
    keys = known_keys()
    return [k for k in keys if not any(other.startswith(k + ".") for other in keys)]


def suggest_key(key: str) -> str:
    """ "did you mean data.window?" for a near miss, else where to find the keys."""
    close = difflib.get_close_matches(key, known_keys(), n=1, cutoff=0.5)
    if close and close[0] != key:
        return f"did you mean {close[0]}?"
    return "see `echo-cli check-data --help`"


def _describe(err: dict[str, Any]) -> str:
    """Turn one pydantic error into "KEY must ..., got VALUE" (VALUE cut short)."""
    loc = ".".join(str(p) for p in err["loc"])
    kind, ctx = err["type"], err.get("ctx", {})
    got = cut(err.get("input"))
    if kind == "extra_forbidden":
        return f"{clip(loc)} is not a known key; {suggest_key(loc)}"
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
        return f"{loc} {message}" if loc else message
    expected = {
        "int_type": "an integer",
        "float_type": "a number",
        "bool_type": "true or false",
        "string_type": "a string",
        "model_type": "a mapping of keys",
        "dict_type": "a mapping of keys",
        "finite_number": "a finite number",
    }
    if kind in expected:
        return f"{loc} must be {expected[kind]}, got {got}"
    bounds = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤",
              "less_than": "<"}
    if kind in bounds:
        bound = next(iter(ctx.values()))
        return f"{loc} must be {bounds[kind]} {bound}, got {got}"
    if kind == "literal_error":
        return f"{loc} must be one of {ctx.get('expected')}, got {got}"
    if kind == "string_pattern_mismatch":
        return (f"{loc} must start with a letter or digit and hold only letters, digits, "
                f"'_', '.' and '-', got {got}")
    if kind == "string_too_long":
        return f"{loc} must be at most {ctx.get('max_length')} characters, got {got}"
    return f"{loc}: {err['msg'].lower()}, got {got}"


def validate(raw: dict[str, Any], *, source: str = "config") -> Config:
    """Build a Config from a nested dict, or raise ConfigError with one line."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{source}: {_describe(first)}{tail}") from None


def load_config(path: str | Path | None = None, *, overrides: list[str] | None = None) -> Config:
    """Defaults < YAML file < dotted overrides, then one validation pass.

    Args:
        path: a YAML file listing only what differs from the defaults; None for the defaults.
        overrides: `KEY=VALUE` strings such as `train.epochs=50`.

    Raises:
        ConfigError: anything that would stop the run, as one printable line.
    """
    raw = _read_file(Path(path)) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    for assignment in overrides or []:
        apply_override(raw, assignment)
    if overrides:
        source += " with --set " + " ".join(o if len(o) <= 80 else o[:79] + "…" for o in overrides)
    return validate(raw, source=source)


def derive(cfg: Config, updates: dict[str, Any], *, source: str) -> Config:
    """A new validated config with some dotted keys replaced; cfg itself is never changed.

    Raises:
        ConfigError: the changed config fails validation (source says where it came from).
    """
    raw = cfg.model_dump()
    for key, value in updates.items():
        *sections, last = key.split(".")
        node = raw
        for section in sections:
            node = node[section]
        node[last] = value
    return validate(raw, source=source)


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML: loading it again reproduces the run."""
    return yaml.safe_dump(cfg.model_dump(), sort_keys=False)
