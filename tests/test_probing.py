"""Linear probes of X(t-k), the streams they use, the inspect command and its pictures."""

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers import one_line_error, sets
from typer.testing import CliRunner

from echo_cli.analysis import probing
from echo_cli.cli import app
from echo_cli.models.cells import Trace
from echo_cli.training.loop import build

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def synthetic_states(values: np.ndarray, remembers: int) -> probing.States:
    """A state at t that holds exactly X(t - remembers), one-hot, and noise."""
    n, length = values.shape
    t = np.arange(remembers, length)
    h = np.random.default_rng(0).normal(0, 0.1, (n, len(t), 12))
    h[np.arange(n)[:, None], np.arange(len(t))[None], values[:, t - remembers]] += 1.0
    return probing.States(t=t, trace=Trace(h=h, c=None), values=values)


def test_a_probe_reads_what_the_state_holds_and_nothing_else():
    rng = np.random.default_rng(1)
    fit_on, score_on = (synthetic_states(rng.integers(0, 10, (300, 20)), 2) for _ in range(2))
    for k, expected in ((2, 1.0), (1, 0.1), (5, 0.1)):
        weights = probing.fit(*probing.pairs(fit_on, k), classes=10)
        accuracy = probing.score(weights, *probing.pairs(score_on, k), classes=10)
        assert accuracy == pytest.approx(expected, abs=0.04), k


def test_pairs_line_up_the_state_at_t_with_x_t_minus_k():
    values = np.array([[10, 11, 12, 13, 14]])
    states = probing.States(t=np.array([1, 2, 4]),
                            trace=Trace(h=np.arange(3, dtype=float).reshape(1, 3, 1), c=None),
                            values=values)
    h, y = probing.pairs(states, 1)
    assert h[:, 0].tolist() == [0, 1, 2] and y.tolist() == [10, 11, 13]
    h, y = probing.pairs(states, 2)
    assert h[:, 0].tolist() == [1, 2] and y.tolist() == [10, 12]  # t=1 has no X(t-2)


def test_probes_are_fitted_on_validation_and_scored_on_held_out(monkeypatch):
    from echo_cli.config.loading import load_config
    from echo_cli.tasks.echo import Echo

    seen = []
    real = Echo.sequences

    def recording(self, cfg, stream, count):
        seen.append(stream)
        return real(self, cfg, stream, count)

    fitted_on = []
    real_fit = probing.fit

    def recording_fit(h, y, *, classes):
        fitted_on.append(y.copy())
        return real_fit(h, y, classes=classes)

    monkeypatch.setattr(Echo, "sequences", recording)
    monkeypatch.setattr(probing, "fit", recording_fit)
    cfg = load_config(overrides=["model.stateful=false", "model.units=5", "data.n_unique=10"])

    curve = probing.memory_curve(build(cfg), cfg, sequences_each=30, max_lag=3)
    assert seen == ["validation", "heldout"] and [p.k for p in curve] == [0, 1, 2, 3]
    held = real(cfg.task, cfg, "heldout", 30)
    assert not np.array_equal(real(cfg.task, cfg, "validation", 30), held)
    assert all(p.fitted == p.scored for p in curve)  # the same count from each stream
    assert len(fitted_on) == 4


def test_fades_at_is_the_first_k_under_twice_chance():
    curve = [probing.Probe(k=k, accuracy=a, chance=0.1, fitted=1, scored=1)
             for k, a in enumerate([1.0, 0.9, 0.25, 0.15, 0.5])]
    assert probing.fades_at(curve) == 3
    assert probing.fades_at(curve[:3]) is None


# -------------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    """A model trained to echo through its state, and the beginner's mistake, both small."""
    base = tmp_path_factory.mktemp("runs")
    stream = ["data.n_unique=10", "data.length=12", "model.units=24", "train.epochs=300",
              "train.batch_size=3", "train.learning_rate=0.01", "eval.sequences=20"]
    mistake = ["data.n_unique=10", "data.length=12", "train.epochs=200", "train.batch_size=6",
               "train.learning_rate=0.01", "eval.sequences=20", "model.units=24"]
    runs = {}
    for name, config, items in (("stream", "stream.yaml", stream),
                                ("mistake", "lag_no_context.yaml", mistake)):
        result = runner.invoke(app, ["train", str(ROOT / "configs" / config), *sets(items),
                                     "--out", str(base / name)])
        assert result.exit_code == 0, result.output
        runs[name] = base / name
    return runs


def probes(out: Path) -> dict[int, dict[str, float]]:
    with (out / "probes.csv").open() as fh:
        return {int(r["k"]): {k: float(v) for k, v in r.items() if k not in ("k", "metric")}
                for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_the_state_of_a_streaming_model_holds_x_t_minus_1(small_runs, tmp_path):
    result = runner.invoke(app, ["inspect", str(small_runs["stream"]), "--heldout", "100",
                                 "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    curve = probes(tmp_path / "s")
    assert curve[1]["accuracy"] >= 0.8  # measured 0.97; chance 0.1
    # rows t = 3..11: the 11 rows with a target, trimmed to whole batches of 3
    assert curve[1]["scored"] == 100 * 9 and curve[1]["fitted"] == curve[1]["scored"]
    for name in ("state.png", "probes.png"):
        assert (tmp_path / "s" / name).read_bytes()[:4] == b"\x89PNG"
    assert "probe accuracy" in result.output and "saved" in result.output


@pytest.mark.slow
def test_the_beginners_mistake_holds_no_x_t_minus_1(small_runs, tmp_path):
    result = runner.invoke(app, ["inspect", str(small_runs["mistake"]), "3", "1", "4", "1", "5",
                                 "9", "2", "6", "5", "3", "5", "8", "--heldout", "100",
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    curve = probes(tmp_path / "m")
    assert curve[1]["accuracy"] <= 3 * curve[1]["chance"]  # measured near chance
    assert curve[0]["accuracy"] >= 0.9  # X(t) itself is right there


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["12", "1", "2", "3", "4", "5", "6", "7"], "12 is outside 0 .. 9"),
        (["1", "2"], "give at least 7 integers"),
    ],
)
def test_inspect_bad_integers_are_one_line(small_runs, args, fragment, tmp_path):
    one_line_error(runner.invoke(app, ["inspect", str(small_runs["mistake"]), *args, "--out",
                                       str(tmp_path / "x")]), fragment)
    assert not (tmp_path / "x").exists()


def test_inspect_refuses_what_it_cannot_show(tmp_path):
    one_line_error(runner.invoke(app, ["inspect", str(tmp_path / "nope")]), "does not exist")
    mlp = tmp_path / "mlp"
    result = runner.invoke(app, ["train", str(ROOT / "configs/lag1.yaml"), *sets([
        "model.kind=mlp", "model.stateful=false", "model.units=4", "train.epochs=3",
        "eval.sequences=5", "data.n_unique=8"]), "--out", str(mlp)])
    assert result.exit_code == 0, result.output
    one_line_error(runner.invoke(app, ["inspect", str(mlp)]),
                   "inspect is for recurrent state, and this run's model.kind is mlp")
