"""Several seeds of one config at once: train.seeds: N trains seed, seed+1, ..., seed+N-1 as
one compiled program (vmapped.py), each seed exactly as a run of its own with that seed.

    outcome = run(cfg, path, dataset=None, on_epoch=bar.update)   # a prepared config, claimed
    code, message = verdict(outcome, path)                        # as experiment.verdict

Each seed keeps what a run of its own would have: its initial weights (drawn from its seed
into one model), its training stream, its validation and held-out streams, and its own run
directory, RUN/seeds/seed=<s>/, written step by step as experiment.Training writes any run
(config.yaml with its seed and train.seeds 1, history.csv, model.keras, metrics.json, ...), so
that every command reads it and `echo-cli train RUN/seeds/seed=<s>/config.yaml` repeats it.
RUN/ holds the config as given, command.txt and, last, seeds.json: the summary across the
seeds (store/seeds.py). A seed stops on its own: at a validation target (train.stop_at_target)
or at a loss that is no longer finite, its variables are kept as they were while the others
train on. A stop signal ends every seed at the end of the chunk. No checkpoints are kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from echo_cli.config.loading import derive, to_yaml
from echo_cli.config.schema import Config
from echo_cli.store import files, rundir
from echo_cli.store import seeds as records
from echo_cli.training import experiment, signals
from echo_cli.training.program import Member, Program

EpochHook = Callable[[int, dict[str, float]], None]


def seed_configs(cfg: Config) -> list[Config]:
    """Each seed's config, as a run of its own: seed s, train.seeds 1."""
    return [derive(cfg, {"seed": cfg.seed + i, "train.seeds": 1},
                   source=f"seed {cfg.seed + i} of train.seeds {cfg.train.seeds}")
            for i in range(cfg.train.seeds)]


# ---------------------------------------------------------------------------------------------
# the run directory

@dataclass
class SeedsOutcome:
    """What a run of several seeds did: each seed's outcome, in seed order, and the summary."""

    outcomes: list[experiment.Outcome]
    summary: records.SeedsSummary | None
    interrupted: bool = False
    error: str | None = None  # seeds.json could not be written
    saved: list[str] = field(default_factory=list)  # RUN/'s own files


def run(cfg: Config, path: Path, *, engine: str = "fast", dataset=None,
        on_epoch: EpochHook | None = None, command: list[str] | None = None) -> SeedsOutcome:
    """Train and finish the seeds of one prepared config (train.seeds > 1) in its claimed
    directory `path`: RUN/config.yaml and command.txt, each seed's run directory, seeds.json.

    on_epoch(epoch, row): after every epoch, with the mean loss and accuracy of the seeds
    that trained it. command: command.txt's lines (experiment.command_lines).

    Raises:
        RunFailedError: RUN/ could not be written, or training itself failed (each seed's
            history so far is kept).
    """
    writer = rundir.RunWriter(path)
    lines = command or experiment.command_lines(None, [])
    try:
        digest = writer.save_config(to_yaml(cfg))
        writer.append_command(lines)
    except OSError as err:
        raise experiment.RunFailedError(f"cannot start the run in {path}: "
                                        f"{files.describe(err, path / rundir.CONFIG)}") from None
    members = []
    for c in seed_configs(cfg):
        where = rundir.seed_dir(path, c.seed)
        try:
            where.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise experiment.RunFailedError(f"cannot start the run in {path}: "
                                            f"{files.describe(err, where)}") from None
        members.append(Member(c, experiment.Training(
            c, where, engine=engine, dataset=dataset,
            command=[f"{lines[0]} (seed {c.seed} of {cfg.train.seeds}, trained together; "
                     f"its run directory)", *lines[1:]])))
    program = Program(cfg, members, on_epoch or (lambda epoch, row: None))
    _train(program, dataset, path)
    return _finish(program, path, digest)


def _train(program: Program, dataset, path: Path) -> None:
    """Train; a failure closes every seed's history (the rows so far are kept) and raises."""
    try:
        program.train(dataset)
    except Exception as err:  # noqa: BLE001 - keep the histories, say it in one line
        for m in program.members:
            with contextlib.suppress(OSError):  # else the streamed rows stand, whole
                m.job.history.close(m.history)
            m.job.board.close()
        text = " ".join(str(err).split())[:200]
        raise experiment.RunFailedError(
            f"training failed after epoch {program.epochs_run} ({type(err).__name__}: {text}); "
            f"each seed's history so far is in {path / rundir.SEEDS}/") from None


def _finish(program: Program, path: Path, digest: str) -> SeedsOutcome:
    """Each seed's run directory, step by step as any run's, then RUN/seeds.json."""
    shared = program.shared
    outcomes = []
    for i, m in enumerate(program.members):
        program.load(i)
        m.job.model, m.job.result = program.model, program.result(i)
        m.job.predictors = shared
        outcomes.append(m.job.finish())
    interrupted = program.interrupted or signals.requested() is not None
    phases = _phases(outcomes)
    cfg = program.cfg
    summary = records.summarize(
        [(m.cfg.seed, o.metrics if rundir.METRICS in o.saved else None)
         for m, o in zip(program.members, outcomes, strict=True)],
        name=cfg.name, errors={m.cfg.seed: o.error for m, o in
                               zip(program.members, outcomes, strict=True) if o.error},
        program={"task": cfg.data.task, "model_kind": cfg.model.kind, "engine": "fast",
                 "backend": cfg.train.backend, "epochs": cfg.train.epochs,
                 "interrupted": interrupted, "train_seconds": round(program.seconds, 3),
                 "phase_seconds": phases, "config_sha256": digest})
    done = SeedsOutcome(outcomes, summary, interrupted=interrupted,
                        saved=[rundir.CONFIG, rundir.COMMAND])
    try:
        records.write_summary(path, summary)
        done.saved.append(rundir.SEEDS_SUMMARY)
    except OSError as err:
        done.error = files.describe(err, path / rundir.SEEDS_SUMMARY)
    return done


def _phases(outcomes: list[experiment.Outcome]) -> dict[str, float]:
    """The program's seconds by phase: import, build, compile and train once (the seeds
    share them), evaluate and save summed over the seeds."""
    found = [o.metrics.phase_seconds or {} for o in outcomes if o.metrics is not None]
    if not found:
        return {}
    out = {k: max(p.get(k, 0.0) for p in found) for k in ("import", "build", "compile",
                                                          "train")}
    out.update({k: round(sum(p.get(k, 0.0) for p in found), 3) for k in ("evaluate", "save")})
    return out


def verdict(outcome: SeedsOutcome, path: Path) -> tuple[int, str | None]:
    """The exit code of a run of several seeds and its one-line message, as
    experiment.verdict gives them for one run: 1 when any seed failed (the first is named),
    a signal's code when stopped, else 0."""
    failed = []
    for o, seed in zip(outcome.outcomes, outcome.summary.seeds if outcome.summary else [],
                       strict=False):
        code, message = experiment.verdict(o, rundir.seed_dir(path, seed))
        if code == 1:
            failed.append(f"seed {seed}: {message}")
    if failed:
        more = f" (and {len(failed) - 1} more seeds)" if len(failed) > 1 else ""
        return 1, failed[0] + more
    if outcome.error is not None:
        return 1, (f"the summary step failed ({outcome.error}); each seed's run is kept in "
                   f"{path / rundir.SEEDS}/")
    if outcome.interrupted:
        return signals.exit_code(), None
    return 0, None
