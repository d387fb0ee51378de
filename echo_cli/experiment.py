"""One experiment, end to end, into its run directory: the path every trainer takes.

    cfg, dataset = prepare(load_config("configs/lag1.yaml"), engine="fast")
    path = rundir.create(None, cfg.name)
    model, result, metrics = run(cfg, path, engine="fast", dataset=dataset)

`prepare` reads any CSV data, resolves the backend and checks the engine, each into a new
validated config (a config is never changed after validation). `run` trains, scores and saves
config.yaml, history.csv, model.keras, metrics.json and curves.png through rundir.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from echo_cli import plots, rundir
from echo_cli.config import Config, derive, to_yaml
from echo_cli.data import Dataset, csv_dataset
from echo_cli.errors import EchoError


class EngineError(EchoError, ValueError):
    """An engine that cannot run this config on this backend."""


def prepare(cfg: Config, *, engine: str) -> tuple[Config, Dataset | None]:
    """The config as it will run, and its dataset (None for random data).

    For data.source csv the file is read and data.n_unique set from its vocabulary;
    train.backend auto becomes the backend that will run.

    Raises:
        DataError, ConfigError, BackendError, EngineError: one line each.
    """
    from echo_cli.models import resolve_backend
    from echo_cli.train import engine_problem

    cfg, dataset = prepare_data(cfg)
    backend = resolve_backend(cfg.train.backend)
    problem = engine_problem(engine, backend, cfg)
    if problem:
        raise EngineError(problem)
    if backend != cfg.train.backend:  # the saved config.yaml names the backend that ran
        cfg = derive(cfg, {"train.backend": backend}, source="the resolved backend")
    return cfg, dataset


def prepare_data(cfg: Config) -> tuple[Config, Dataset | None]:
    """For data.source csv: read the file, and set n_unique from its vocabulary if it has one.

    Raises:
        DataError: the file or column cannot be used.
        ConfigError: the config is invalid with the file's n_unique.
    """
    if cfg.data.source != "csv":
        return cfg, None
    dataset = csv_dataset(cfg.data)
    if dataset.n_unique != cfg.data.n_unique:
        cfg = derive(cfg, {"data.n_unique": dataset.n_unique},
                     source=f"{cfg.data.path} with its vocabulary")
    return cfg, dataset


def describe_dataset(cfg: Config, dataset: Dataset) -> str:
    """One line on what a CSV file became: sequences, held-out part, vocabulary."""
    how = (f"{len(dataset.vocabulary)} distinct values mapped to ids 0 .. "
           f"{len(dataset.vocabulary) - 1} (data.n_unique = {dataset.n_unique})"
           if dataset.vocabulary is not None else
           f"integers used as they are (data.n_unique = {dataset.n_unique}, the largest + 1)")
    return (f"data: {dataset.rows} values from {cfg.data.path} column {cfg.data.column!r}: "
            f"{len(dataset.train)} training sequences (cycled, one per epoch) and "
            f"{len(dataset.heldout)} held-out sequences from the last "
            f"{cfg.data.heldout_fraction:.0%} of the file; {how}")


def run(cfg: Config, path: Path, *, engine: str = "fast", dataset: Dataset | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None):
    """Train and score one prepared config, saving everything in the run directory `path`.

    Returns:
        (model, RunResult, Metrics). After Ctrl-C the run is saved as far as it went.
    """
    from echo_cli.models import import_keras, save_model
    from echo_cli.train import train

    import_keras(cfg.train.backend)
    writer = rundir.RunWriter(path)
    writer.save_config(to_yaml(cfg))
    if dataset is not None and dataset.vocabulary is not None:
        writer.save_vocabulary(dataset.vocabulary)
    model, result = train(cfg, engine=engine, on_epoch=on_epoch, dataset=dataset)
    metrics = result.metrics(cfg)
    writer.save_history(result.history)
    writer.save_model(lambda tmp: save_model(model, tmp))
    writer.save_metrics(metrics)
    if result.history:
        plots.plot_curves(result.history, writer.file(rundir.CURVES),
                          chance=cfg.chance_accuracy,
                          title=f"{cfg.name}: {cfg.model.kind}, lag {cfg.data.lag}")
    return model, result, metrics

