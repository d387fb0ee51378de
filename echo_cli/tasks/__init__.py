"""The tasks a config can train, one object each, registered by their data.task name.

    task = tasks.get(cfg.data.task)     # or cfg.task
    task.signature(cfg); task.blocks(cfg, ...); task.evaluate(cfg, ...); task.check_data(...)

Each task is a module (echo.py, copy.py, adding.py) implementing base.Task: its data keys and
their defaults and checks, its generators for the train, validation and held-out streams, how
its batches are shaped for the model, its baseline, chance and accuracy figure, its scoring,
and how it is shown. Adding a task is one module and one line in TASKS below; every command
asks the task object, and the tests that run every command on every task pick it up. Nothing
here imports TensorFlow.
"""

from __future__ import annotations

from echo_cli.tasks.adding import Adding
from echo_cli.tasks.base import Task
from echo_cli.tasks.copy import Copy
from echo_cli.tasks.echo import Echo
from echo_cli.tasks.induction import Induction
from echo_cli.tasks.selective_copy import SelectiveCopy

TASKS: dict[str, Task] = {task.name: task for task in (Echo(), Copy(), Adding(),
                                                       SelectiveCopy(), Induction())}


def get(name: str) -> Task:
    """The registered task of a data.task name (KeyError for an unknown one)."""
    return TASKS[name]


def names() -> tuple[str, ...]:
    return tuple(TASKS)


def owner(key: str) -> str | None:
    """The first task whose data section has `key` (None if none has)."""
    return next((name for name, task in TASKS.items() if key in task.Data.model_fields), None)
