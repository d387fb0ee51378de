"""metrics.json's record: one typed definition that every reader of runs uses.

    metrics = Metrics(**fields)       # validated: types strict, a scored run complete
    metrics.to_dict()                 # exactly the fields that were set, in file order

Adding a metric is adding a field here (and setting it in train.RunResult.metrics). Readers
(results, compare, sweep, bench) get it by name; rundir.py reads and writes the file.
This module imports nothing from echo_cli.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCORE_FIELDS = ("heldout_correct", "heldout_targets", "ci95_low", "ci95_high")
SHARES = ("heldout_accuracy", "ci95_low", "ci95_high", "chance_accuracy",
          "final_train_accuracy", "heldout_exact_match", "final_validation_accuracy")
# metrics.json of the adding problem before echo-cli 0.2 named its figure apart
RENAMED = {"heldout_within": "heldout_accuracy", "heldout_within_count": "heldout_correct",
           "within_ci95_low": "ci95_low", "within_ci95_high": "ci95_high"}
COUNTS = ("epochs", "epochs_completed", "updates", "samples", "train_seconds", "parameters",
          "heldout_correct", "heldout_targets", "heldout_sequences", "heldout_loss",
          "baseline_loss")


class Metrics(BaseModel):
    """metrics.json. Fields in the order they are written; optional groups are written only
    when they apply (sequence targets, a target accuracy), so the file holds what was set."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    name: str
    seed: int
    task: str = "echo"
    data_source: str = "random"
    engine: str = "fast"
    backend: str = "tensorflow"
    epochs: int = 0
    epochs_completed: int
    interrupted: bool
    model_kind: str = "lstm"
    parameters: int | None = None  # trainable
    frozen_parameters: int | None = None  # the one-hot table: looked up, never trained
    multiply_adds_per_sample: int | None = None
    updates: int
    samples: int = 0
    train_seconds: float
    seconds_per_update: float | None = None  # warm: after the first chunk and its compiling
    phase_seconds: dict[str, float] | None = None  # import, build, compile, train, evaluate,...
    seeds_together: int | None = Field(
        None, description="train.seeds > 1: the seeds trained together in one compiled "
                          "program, this one among them (RUN/seeds/seed=S/); train_seconds, "
                          "seconds_per_update and phase_seconds are the program's, for all")
    peak_rss_mb: float | None = None
    chance_accuracy: float
    final_train_loss: float | None = None
    final_train_accuracy: float | None = None
    # the task's memoryless loss (ln n, 10·ln 8/(T+20), 1/6) beside the held-out loss
    baseline_loss: float | None = None
    heldout_loss: float | None = None
    heldout_accuracy: float | None = None
    heldout_correct: int | None = None
    heldout_targets: int | None = None
    heldout_sequences: int | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None
    # the adding problem: a sum predicted within this counts as right
    tolerance: float | None = None
    # convolutional kinds: how many steps back each output sees
    receptive_field: int | None = None
    # eval.lengths: the held-out figures at each other length, {T: {accuracy, correct, ...}}
    heldout_by_length: dict[str, dict[str, float | int | None]] | None = None
    # sequence targets
    heldout_unscored_positions: int | None = None
    heldout_exact_match: float | None = None
    heldout_per_position: list[float | None] | None = None
    # train.target_accuracy or train.target_loss
    target_accuracy: float | None = None
    target_loss: float | None = None
    validation_sequences: int | None = None
    reached_target: bool | None = None
    epochs_to_target: int | None = None
    samples_to_target: int | None = None
    final_validation_accuracy: float | None = None
    final_validation_loss: float | None = None
    # a step that failed after training: what was done before it is kept
    failed_step: str | None = None
    error: str | None = None
    # config.yaml as trained, so an edit made later is caught before the model is used
    config_sha256: str | None = None
    # the versions that made the run, and the git commit of the working directory
    provenance: dict[str, str | None] | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_numbers(cls, data: Any) -> Any:
        """numpy scalars (an np.int64 count, say) become the Python numbers they hold, and an
        older adding run's figure takes today's names (its targets are its sequences)."""
        if not isinstance(data, dict):
            return data
        data = {k: v.item() if type(v).__module__ == "numpy" and hasattr(v, "item") else v
                for k, v in data.items()}
        if "heldout_within" in data and "heldout_accuracy" not in data:
            data = {RENAMED.get(k, k): v for k, v in data.items()}
            data.setdefault("heldout_targets", data.get("heldout_sequences"))
        return data

    @model_validator(mode="after")
    def _scored_runs_are_complete(self) -> Metrics:
        if self.heldout_accuracy is not None:
            lacking = [k for k in SCORE_FIELDS if getattr(self, k) is None]
            if lacking:
                raise ValueError(f"a scored run needs {', '.join(lacking)}")
        for name in SHARES:
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in COUNTS:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be ≥ 0, got {value}")
        if (self.heldout_correct or 0) > (self.heldout_targets or 0):
            raise ValueError(f"heldout_correct ({self.heldout_correct}) is more than "
                             f"heldout_targets ({self.heldout_targets})")
        self._agrees_with_itself()
        return self

    def _agrees_with_itself(self) -> None:
        """The accuracy is its counts' quotient, and its interval holds it: a figure edited
        by hand is caught."""
        acc, correct, targets = self.heldout_accuracy, self.heldout_correct, self.heldout_targets
        if acc is None or not targets:
            return
        if abs(acc - correct / targets) > 1e-9:
            raise ValueError(f"heldout_accuracy {acc} is not heldout_correct / heldout_targets "
                             f"= {correct}/{targets}")
        if not (self.ci95_low - 1e-9 <= acc <= self.ci95_high + 1e-9):
            raise ValueError(f"heldout_accuracy {acc} is outside its interval "
                             f"{self.ci95_low}-{self.ci95_high}")

    @property
    def scored(self) -> bool:
        """True when the run finished with a held-out score."""
        return self.heldout_accuracy is not None or self.heldout_loss is not None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
