"""Experiment configuration: YAML loading, dotted overrides, one validation pass.

Precedence is defaults < file < command line, then validation against the schema
(schema.py). A name with no file of that name is a built-in config (builtin.py):

    cfg = load_config("configs/lag1.yaml", overrides=["train.epochs=50"])
    cfg = load_config("lag1")   # the same file, as installed with echo-cli
    cfg.data.window  # 5

Every problem raises ConfigError with one line that names the key, what was received
and what was expected. This module imports no TensorFlow.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from echo_cli import tasks
from echo_cli.config import builtin
from echo_cli.config.schema import Config, ConfigError
from echo_cli.config.yamlio import describe_error, parse_yaml, read_yaml_file
from echo_cli.errors import (  # noqa: F401 - clip and cut: for above
    clip,
    cut,
    option_words,
    overrides_words,
    path_problem,
)

# ---------------------------------------------------------------------------------------------
# loading: defaults < file < --set, then one validation pass

MAX_SET_CHARS = 10_000  # a --set value longer than this is a mistake (or an attack)


def _read_file(path: Path) -> dict[str, Any]:
    problem = path_problem(path)
    if problem == "does not exist":
        raise ConfigError(f"config file {path} does not exist, and no built-in config has that "
                          f"name; give the path to a YAML file or a built-in name: "
                          f"{', '.join(builtin.names())}")
    if problem == "is a directory":
        raise ConfigError(f"config path {path} is a directory; give a YAML file inside it, "
                          f"for example {path / 'config.yaml'}")
    if problem is not None:
        raise ConfigError(f"config file {path} {problem}; give the path to a YAML file")
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
            f"{option_words('--set')} expects KEY=VALUE, for example train.epochs=50, got "
            f"{cut(assignment)}")
    if len(assignment) > MAX_SET_CHARS:
        raise ConfigError(f"{overrides_words([key + '=...'])} is {len(assignment):,} characters "
                          f"long; a value is at most {MAX_SET_CHARS:,}")
    try:
        value = parse_yaml(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"{overrides_words([cut(assignment)])}: {cut(text)} is not a valid "
                          f"YAML value"
                          f"{describe_error(err)}") from None
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"{overrides_words([assignment])}: {where} is a value, not a "
                          f"section")
        node = child
    node[parts[-1]] = value


def _section_keys(name: str, annotation: Any) -> list[str]:
    """The keys of one section; the data section's are every task's, in registry order."""
    if name == "data":
        return list(dict.fromkeys(k for task in tasks.TASKS.values()
                                  for k in task.Data.model_fields))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def known_keys() -> list[str]:
    """Every dotted key of the schema, sections included."""
    keys = []
    for name, field in Config.model_fields.items():
        keys.append(name)
        keys += [f"{name}.{key}" for key in _section_keys(name, field.annotation)]
    return keys


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


def _where(err: dict[str, Any]) -> tuple[str, str | None]:
    """The dotted key of a pydantic error, and the task of a data section it was found in (the
    discriminated union puts the task's name into the location)."""
    loc = [str(p) for p in err["loc"]]
    task = None
    if len(loc) > 1 and loc[0] == "data" and loc[1] in tasks.TASKS:
        task = loc.pop(1)
    return ".".join(loc), task


EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
            "string_type": "a string", "model_type": "a mapping of keys",
            "model_attributes_type": "a mapping of keys", "dict_type": "a mapping of keys",
            "finite_number": "a finite number"}
BOUNDS = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤",
          "less_than": "<"}


def _describe(err: dict[str, Any]) -> str:
    """Turn one pydantic error into "KEY must ..., got VALUE" (VALUE cut short)."""
    loc, task = _where(err)
    kind, ctx = err["type"], err.get("ctx", {})
    got = cut(err.get("input"))
    if kind == "extra_forbidden":
        owner = tasks.owner(loc.removeprefix("data.")) if loc.startswith("data.") else None
        if owner is not None and task is not None:
            return (f"{loc} belongs to data.task: {owner}; remove it, since this config has "
                    f"data.task: {task}")
        return f"{clip(loc)} is not a known key; {suggest_key(loc)}"
    if kind == "union_tag_invalid":
        return (f"{loc}.task must be one of {', '.join(tasks.names())}, got "
                f"{cut(ctx.get('tag'))}")
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
        return f"{loc} {message}" if loc and not message.startswith(loc) else message
    if kind in EXPECTED:
        return f"{loc} must be {EXPECTED[kind]}, got {got}"
    if kind in BOUNDS:
        return f"{loc} must be {BOUNDS[kind]} {next(iter(ctx.values()))}, got {got}"
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
    raw = _read_file(builtin.resolve(path)) if path is not None else {}  # lag1: built-in
    source = str(path) if path is not None else "defaults"
    for assignment in overrides or []:
        apply_override(raw, assignment)
    if overrides:
        source += " with " + overrides_words(overrides)
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
