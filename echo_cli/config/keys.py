"""The schema in words (`echo-cli config keys`) and as JSON Schema (`echo-cli config schema`).

    for doc in key_docs(): print(doc.key, doc.kind, doc.default, doc.description)
    json_schema()            # draft 2020-12, for editors that check and complete YAML

Both are read from the schema itself, the tasks' and kinds' own keys included, so they cannot
go stale. This module imports no TensorFlow.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from echo_cli import models, tasks
from echo_cli.config.schema import DEFAULT_TASK, Config, task_defaults

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
    """Every key that holds a value, in the schema's order, described from the schema: the
    data keys of each task (a key two tasks share is listed for each), and the model keys with
    the kinds that read them."""
    docs = []
    for name, field in Config.model_fields.items():
        if name == "data":
            docs += _data_docs()
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            docs += _key_docs(field.annotation, f"{name}.")
        else:
            docs += _key_docs(Config, "", only=name)
    return docs


def _data_docs() -> list[KeyDoc]:
    docs = [KeyDoc("data.task", "one of " + ", ".join(tasks.names()), "echo", tasks.names(),
                   "the task: " + "; ".join(f"{t.name}: {t.summary}"
                                            for t in tasks.TASKS.values()))]
    for task in tasks.TASKS.values():
        for doc in _key_docs(task.Data, "data."):
            if doc.key != "data.task":
                docs.append(KeyDoc(doc.key, doc.kind, doc.default, doc.allowed,
                                   f"{task.name}: {doc.description}"))
    return docs


def _readers(key: str) -> str:
    return ", ".join(k.name for k in models.KINDS.values() if key in k.keys)


def _key_docs(model: type[BaseModel], prefix: str, *, only: str | None = None) -> list[KeyDoc]:
    docs = []
    for name, field in model.model_fields.items():
        if only is not None and name != only:
            continue
        kind, allowed = _kind(field.annotation, field.metadata)
        default = _scalar(field.default)
        changed: dict[str, list[str]] = {}  # a value -> the tasks that set it
        for task, value in task_defaults(prefix.rstrip("."), name).items():
            changed.setdefault(_scalar(value), []).append(task)
        if changed:
            default += " (" + "; ".join(f"{', '.join(t)}: {v}" for v, t in changed.items()) + ")"
        description = field.description or ""
        readers = _readers(name) if prefix == "model." else ""
        if readers and not description.startswith(readers):
            description = f"{readers}: {description}"
        docs.append(KeyDoc(f"{prefix}{name}", kind, default, allowed, description))
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
    for name, task in tasks.TASKS.items():  # a task other than the default must be named
        definition = schema["$defs"][task.Data.__name__]
        if name != DEFAULT_TASK:
            definition["required"] = ["task", *definition.get("required", [])]
    for section, text in SECTIONS.items():
        annotation = Config.model_fields[section].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            schema["$defs"][annotation.__name__]["description"] = text
        schema["properties"][section].update(title=section, description=text)
    head = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "echo-cli experiment config",
            "description": "One experiment for `echo-cli train`; every key left out keeps its "
                           "default. `echo-cli config keys` lists them."}
    return {**head, **{k: v for k, v in schema.items() if k not in head}}
