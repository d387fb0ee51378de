"""Experiment configuration: YAML loading, dotted overrides, one validation pass.

Precedence is defaults < file < command line, then validation against the schema
(schema.py):

    cfg = load_config("configs/lag1.yaml", overrides=["train.epochs=50"])
    cfg.data.window  # 5

Every problem raises ConfigError with one line that names the key, what was received
and what was expected. This module imports no TensorFlow.
"""

from __future__ import annotations

import difflib
import reprlib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from echo_cli.config.schema import (  # noqa: F401 - the schema, importable from here too
    MEMORY_DEFAULTS,
    Config,
    ConfigError,
    DataConfig,
    EvalConfig,
    ModelConfig,
    TrainConfig,
)
from echo_cli.config.yamlio import describe_error, parse_yaml, read_yaml_file

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 60, 60, 6, 6, 2


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
    return "see `echo-cli config keys` for every key"


def _describe(err: dict[str, Any]) -> str:
    """Turn one pydantic error into "KEY must ..., got VALUE" (VALUE cut short)."""
    loc = ".".join(str(p) for p in err["loc"])
    kind, ctx = err["type"], err.get("ctx", {})
    got = cut(err.get("input"))
    if kind == "extra_forbidden":
        return f"{clip(loc)} is not a known key; {suggest_key(loc)}"
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
        return f"{loc} {message}" if loc and not message.startswith(loc) else message
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
    raw = cfg.dump()
    for key, value in updates.items():
        *sections, last = key.split(".")
        node = raw
        for section in sections:
            node = node[section]
        node[last] = value
    return validate(raw, source=source)


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML: loading it again reproduces the run."""
    return yaml.safe_dump(cfg.dump(), sort_keys=False)


# ---------------------------------------------------------------------------------------------
# the schema in words (`echo-cli config keys`) and as JSON Schema (`echo-cli config schema`)

SECTIONS = {
    "data": "the task and its sequences, and how a sequence becomes samples",
    "model": "the network, its size and how it reads its input",
    "train": "how it learns (epochs, batches, step size, when to stop, the Keras backend)",
    "eval": "how it is scored, on fresh held-out sequences from a separate seed",
}
_TYPE_WORDS = {int: "integer", float: "number", bool: "true or false", str: "text"}
_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))


@dataclass(frozen=True)
class KeyDoc:
    """One key of the schema in words: `train.epochs`, "integer ≥ 1", "2000", its help."""

    key: str  # dotted, as --set takes it
    kind: str  # its type and bounds, e.g. "number > 0, or null"
    default: str  # as YAML writes it, with a memory task's own default: "5 (copy, adding: 32)"
    allowed: tuple[str, ...]  # a choice's values; () for a free value
    description: str


def key_docs() -> list[KeyDoc]:
    """Every key that holds a value, in the schema's order, described from the schema."""
    return _key_docs(Config, "")


def _key_docs(model: type[BaseModel], prefix: str) -> list[KeyDoc]:
    docs = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            docs.extend(_key_docs(annotation, f"{prefix}{name}."))
            continue
        kind, allowed = _kind(annotation, field.metadata)
        default = _scalar(field.default)
        memory = MEMORY_DEFAULTS.get((prefix.rstrip("."), name))
        if memory is not None:
            default += f" (copy, adding: {_scalar(memory)})"
        docs.append(KeyDoc(f"{prefix}{name}", kind, default, allowed, field.description or ""))
    return docs


def _kind(annotation: Any, metadata: list[Any]) -> tuple[str, tuple[str, ...]]:
    """("integer ≥ 1", ()) or ("one of lstm, gru", ("lstm", "gru")) for one field."""
    options = (list(get_args(annotation))
               if get_origin(annotation) in (Union, types.UnionType) else [annotation])
    (base,) = [a for a in options if a is not type(None)]
    allowed: tuple[str, ...] = ()
    if get_origin(base) is Literal:
        allowed = tuple(str(v) for v in get_args(base))
        words = "one of " + ", ".join(allowed)
    else:
        words = _TYPE_WORDS.get(base, getattr(base, "__name__", str(base)))
    limits = [f"{sign} {getattr(m, attr)}" for m in metadata for attr, sign in _BOUNDS
              if getattr(m, attr, None) is not None]
    if limits:
        words += " " + " and ".join(limits)
    shortest = next((m.min_length for m in metadata if getattr(m, "min_length", None)), None)
    longest = next((m.max_length for m in metadata if getattr(m, "max_length", None)), None)
    if longest is not None:
        words += (f" of {shortest} to {longest} characters" if shortest else
                  f" of at most {longest} characters")
    if type(None) in options:
        words += ", or null"
    return words, allowed


def _scalar(value: Any) -> str:
    """A value as it is written in a YAML config: null, true, 0.001, lag1, ''."""
    return yaml.safe_dump(value).removesuffix("\n...\n").strip()


def json_schema() -> dict[str, Any]:
    """The config's JSON Schema (draft 2020-12) with each key's description, for editors that
    check and complete YAML (configs/echo-cli.schema.json)."""
    schema = Config.model_json_schema()
    for section, text in SECTIONS.items():
        definition = Config.model_fields[section].annotation.__name__
        schema["$defs"][definition]["description"] = text
        schema["properties"][section].update(title=section, description=text)
    head = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "echo-cli experiment config",
            "description": "One experiment for `echo-cli train`; every key left out keeps its "
                           "default. `echo-cli config keys` lists them."}
    return {**head, **{k: v for k, v in schema.items() if k not in head}}
