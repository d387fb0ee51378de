"""The config schema, put together from the task and model-kind registries.

    Config.model_validate({"data": {"task": "copy", "delay": 50}})   # stateless, batch 32
    cfg.task, cfg.kind                                               # the registered objects
    cfg.dump()                                                       # only the keys that apply

The data section is the task's own (tasks/<name>.py declares its keys, defaults and checks),
chosen by data.task; the model section holds the keys every kind reads and those each kind
declares (models/<module>.py). A task's own defaults for other sections (its papers' recipe)
fill the keys a config leaves out. After validation the kind's properties are checked against
the task's signature, then the task checks its own combinations. This module imports no
TensorFlow.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, create_model, model_validator

from echo_cli import models, tasks
from echo_cli.errors import EchoError
from echo_cli.fields import Section
from echo_cli.models.base import Kind, Signature
from echo_cli.tasks.base import Task

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_LENGTH = 1 << 22  # eval.lengths: steps of one sequence, at most
MAX_SEEDS = 1024  # train.seeds: seeds in one compiled program, at most
DEFAULT_TASK = "echo"


class ConfigError(EchoError, ValueError):
    """A config that cannot be run. The message is one line, ready to print."""


DataConfig = Annotated[Union[tuple(task.Data for task in tasks.TASKS.values())],  # noqa: UP007
                       Field(discriminator="task")]


def _model_keys() -> dict[str, Any]:
    """Every key a kind declares, once: kinds that share a key declare the same one."""
    keys: dict[str, Any] = {}
    for kind in models.KINDS.values():
        for name, spec in kind.keys.items():
            keys.setdefault(name, spec)
    return keys


KIND_WORDS = " | ".join(f"{k.name} ({k.summary.split(':')[0]})" for k in models.KINDS.values())

ModelConfig = create_model(
    "ModelConfig", __base__=Section,
    kind=(Literal[models.names()], Field("lstm", description=KIND_WORDS)),
    encoding=(Literal["onehot", "embedding"], Field(
        "onehot", description="onehot: the tutorial's vectors; embedding: learned, for large n")),
    embedding_dim=(int, Field(32, ge=1, description="model.encoding embedding: vector size")),
    units=(int, Field(50, ge=1, description="hidden units (channels for conv1d and tcn)")),
    stateful=(bool, Field(True, description="carry state from batch to batch within a "
                                            "sequence")),
    **_model_keys(),
)
SHARED_MODEL_KEYS = ("kind", "encoding", "embedding_dim", "units", "stateful")


class TrainConfig(Section):
    epochs: int = Field(2000, ge=1, description="one epoch = one fresh sequence (echo), or one "
                                                "update on a batch of fresh sequences (the "
                                                "memory tasks)")
    batch_size: int = Field(5, ge=1, description="samples per weight update")
    learning_rate: float = Field(0.001, gt=0, description="Adam's step size")
    clipnorm: float | None = Field(None, gt=0, description="clip each gradient to this norm "
                                                            "(None: no clipping)")
    target_accuracy: float | None = Field(
        None, gt=0, le=1, description="stop once validation accuracy reaches this (None: never)")
    target_loss: float | None = Field(
        None, gt=0, description="the memory tasks: stop once validation loss is at most this")
    validate_every: int = Field(
        50, ge=1, description="epochs between validation checks when a target is set")
    stop_at_target: bool = Field(
        True, description="stop once a target is reached; false: train all train.epochs "
                          "(an equal budget for every run) and record when it was reached")
    checkpoint_every: int | None = Field(
        None, ge=0, description="save the training state (RUN/checkpoint.npz) every N epochs, "
                                "for `train --resume RUN`; null: once a minute, so short runs "
                                "save none; 0: never")
    seeds: int = Field(
        1, ge=1, le=MAX_SEEDS,
        description="train this many seeds at once (seed, seed+1, ...), as one compiled program "
                    "on the fast engine's JAX backend; each is saved as a run of its own "
                    "under RUN/seeds/, with a summary across them in RUN/seeds.json")
    backend: Literal["auto", "tensorflow", "jax"] = Field(
        "auto", description="Keras backend; auto: $KERAS_BACKEND, else the fastest installed "
                            "for the engine (jax for fast, tensorflow for tutorial)")


class EvalConfig(Section):
    sequences: int = Field(1000, ge=1, description="fresh held-out sequences, from a separate "
                                                   "seed")
    examples: int = Field(3, ge=0, description="decoded held-out sequences to print")
    validation_sequences: int = Field(
        100, ge=1, description="fresh sequences for a train target, apart from held-out")
    lengths: list[Annotated[int, Field(ge=1, le=MAX_LENGTH)]] | None = Field(
        None, max_length=32,
        description="also score the trained model at these sequence lengths, e.g. [64, 256, "
                    "1024] (without retraining; tasks whose sequences can be made longer, and "
                    "a recurrent model.kind)")


class Config(Section):
    name: str = Field("lag1", min_length=1, max_length=100, pattern=NAME_PATTERN,
                      description="names the run directory: letters, digits, _ . -")
    description: str = Field("", max_length=2000,
                             description="what the experiment tests, for results tables")
    seed: int = Field(1, ge=0, le=2**32 - 1, description="all randomness derives from it")
    data: DataConfig = Field(default_factory=lambda: tasks.get(DEFAULT_TASK).Data())
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: Any) -> Any:
        """data.task defaults to the echo; a task's own defaults fill the keys left out."""
        if not isinstance(raw, dict):
            return raw
        data = raw.get("data", {})
        if not isinstance(data, dict):
            return raw
        raw = {**raw, "data": {"task": DEFAULT_TASK, **data}}
        task = tasks.TASKS.get(raw["data"]["task"]) if isinstance(raw["data"]["task"],
                                                                  str) else None
        for (section, key), value in (task.defaults if task else {}).items():
            part = raw.get(section, {})
            if isinstance(part, dict) and key not in part:
                raw[section] = {**part, key: value}
        return raw

    @model_validator(mode="after")
    def _check_combinations(self) -> Config:
        _check_kind(self)
        if self.seed + self.train.seeds - 1 > 2**32 - 1:
            raise ValueError(f"train.seeds {self.train.seeds} from seed {self.seed} reaches past "
                             f"2**32 - 1; give fewer seeds or a lower seed")
        self.task.check(self)
        return self

    @property
    def task(self) -> Task:
        return tasks.get(self.data.task)

    @property
    def kind(self) -> Kind:
        return models.get(self.model.kind)

    @property
    def signature(self) -> Signature:
        return self.task.signature(self)

    @property
    def steps(self) -> int:
        """Timesteps the model reads per sample."""
        return self.task.steps(self)

    @property
    def chance_accuracy(self) -> float:
        """Chance for the task's accuracy figure."""
        return self.task.chance(self)

    @property
    def baseline_loss(self) -> float:
        """What a model with no memory scores."""
        return self.task.baseline(self)

    def dump(self) -> dict[str, Any]:
        """The config as plain data: the task's data keys, and the model keys the kind reads
        (config.yaml)."""
        out = self.model_dump()
        keep = (*SHARED_MODEL_KEYS, *self.kind.keys)
        out["model"] = {k: v for k, v in out["model"].items() if k in keep}
        return out

    def warnings(self) -> list[str]:
        """Plain-language notes about a config that runs but may surprise its user."""
        unread = sorted(set(self.model.model_fields_set) - {*SHARED_MODEL_KEYS,
                                                            *self.kind.keys})
        notes = [f"model.{key} is read by model.kind {_readers(key)}; this {self.model.kind} "
                 f"ignores it" for key in unread]
        return self.task.warnings(self) + notes


def _readers(key: str) -> str:
    return models.words([k.name for k in models.KINDS.values() if key in k.keys])


def _check_kind(cfg: Config) -> None:
    """What the task asks of model.kind, read from the kind's properties: state needs a kind
    that can carry it, outputs per step a kind that keeps the steps."""
    kind = cfg.kind
    if cfg.model.stateful and not kind.stateful:
        raise ValueError(f"model.stateful: true needs a model.kind that carries its state from "
                         f"batch to batch ({models.words(models.having('stateful'))}); "
                         f"{kind.name} does not")
    problem = kind.check(cfg.model) if kind.check is not None else None
    if problem:
        raise ValueError(problem)
    if cfg.signature.per_step and not kind.per_step:
        raise ValueError(f"{cfg.task.per_step_reason(cfg)} needs an output per timestep; "
                         f"{kind.name} gives one output per sample, so use "
                         f"{models.words(models.having('per_step'))}")
    if cfg.eval.lengths:
        _check_lengths(cfg)


def _check_lengths(cfg: Config) -> None:
    """eval.lengths needs a task that can make its sequences longer, and a kind whose weights
    do not depend on the length (a recurrent one: a convolution adds levels, an MLP inputs)."""
    if cfg.task.at_length(cfg, cfg.eval.lengths[0]) is None:
        able = [t.name for t in tasks.TASKS.values() if t.at_length(cfg, 1) is not None]
        raise ValueError(f"eval.lengths scores a model at other sequence lengths; data.task: "
                         f"{cfg.data.task} has no length to change (it works with "
                         f"{', '.join(able)})")
    if not cfg.kind.recurrent:
        raise ValueError(f"eval.lengths needs a model.kind that reads any length "
                         f"({models.words(models.having('recurrent'))}); {cfg.kind.name}'s "
                         f"weights depend on the length it was built for")


def task_defaults(section: str, key: str) -> dict[str, Any]:
    """The tasks that change the default of `section.key`, and the value each sets."""
    return {name: task.defaults[(section, key)] for name, task in tasks.TASKS.items()
            if (section, key) in task.defaults}
