"""Copy memory and the adding problem: exact generators, baselines, keys, models, training."""

import math

import numpy as np
import pytest
from helpers import sets
from typer.testing import CliRunner

from echo_cli.cli import app
from echo_cli.config.loading import ConfigError, load_config
from echo_cli.models import convolutional
from echo_cli.tasks import adding as adding_task
from echo_cli.tasks import copy as copy_task
from echo_cli.tasks.base import stream_rng
from echo_cli.training.loop import build

runner = CliRunner()
COPY = ["data.task=copy", "data.delay=6", "data.recall=3"]
ADDING = ["data.task=adding", "data.length=8"]


# -------------------------------------------------------------------------------- generators

@pytest.mark.parametrize(("delay", "recall"), [(1, 1), (5, 3), (50, 10)])
def test_copy_memory_is_the_papers_layout(delay, recall):
    x, y = copy_task.copy_memory(np.random.default_rng(0), count=200, delay=delay, recall=recall)
    steps = delay + 2 * recall
    assert x.shape == y.shape == (200, steps)
    symbols = x[:, :recall]
    assert symbols.min() >= 1 and symbols.max() <= 8 and set(np.unique(symbols)) <= set(
        range(1, 9))
    assert (x[:, recall : recall + delay - 1] == copy_task.BLANK).all()  # T-1 blanks
    assert (x[:, recall + delay - 1 :] == copy_task.MARKER).all()  # the marker, then recall more
    markers = (x[:, recall + delay - 1 :] == copy_task.MARKER).sum(axis=1)
    assert markers.tolist() == [recall + 1] * 200
    assert (y[:, :-recall] == copy_task.BLANK).all() and (y[:, -recall:] == symbols).all()


def test_copy_memory_small_example():
    x, y = copy_task.copy_memory(np.random.default_rng(3), count=1, delay=4, recall=2)
    a, b = x[0, :2].tolist()
    assert x[0].tolist() == [a, b, 0, 0, 0, 9, 9, 9]
    assert y[0].tolist() == [0, 0, 0, 0, 0, 0, a, b]


@pytest.mark.parametrize("length", [2, 3, 9, 100])
def test_adding_marks_one_step_in_each_half(length):
    x, y = adding_task.adding(np.random.default_rng(0), count=500, length=length)
    assert x.shape == (500, length, 2) and y.shape == (500,)
    values, markers = x[..., 0], x[..., 1]
    assert (values >= 0).all() and (values < 1).all()
    assert set(np.unique(markers)) <= {0.0, 1.0} and (markers.sum(axis=1) == 2).all()
    half = length // 2
    assert (markers[:, :half].sum(axis=1) == 1).all() and (markers[:, half:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y, (values * markers).sum(axis=1), rtol=1e-6)


# -------------------------------------------------------------------------------- baselines

@pytest.mark.parametrize(("delay", "recall"), [(1, 1), (50, 10), (100, 10), (1000, 10), (7, 3)])
def test_the_copy_baseline_is_what_a_memoryless_guess_scores(delay, recall):
    steps = delay + 2 * recall
    assert copy_task.copy_baseline(delay=delay, recall=recall) == pytest.approx(
        recall * math.log(8) / steps)
    cfg = load_config(overrides=["data.task=copy", f"data.delay={delay}",
                                 f"data.recall={recall}"])
    assert cfg.baseline_loss == copy_task.copy_baseline(delay=delay, recall=recall)
    # blanks predicted with certainty, then a uniform guess over the 8 symbols
    x, y = copy_task.copy_memory(np.random.default_rng(1), count=50, delay=delay, recall=recall)
    probs = np.zeros((50, steps, 10))
    probs[:, :-recall, 0] = 1.0
    probs[:, -recall:, 1:9] = 1 / 8
    scores = copy_task.copy_scores(probs, y, recall=recall)
    assert scores["loss_sum"] / scores["loss_count"] == pytest.approx(cfg.baseline_loss,
                                                                      rel=1e-5)
    assert copy_task.copy_baseline(delay=1000, recall=10) == pytest.approx(0.0204, abs=5e-5)


def test_the_adding_baseline_is_what_always_predicting_one_scores():
    cfg = load_config(overrides=ADDING)
    assert cfg.baseline_loss == pytest.approx(1 / 6)
    _, y = adding_task.adding(np.random.default_rng(2), count=200_000, length=10)
    scores = adding_task.adding_scores(np.ones(len(y)), y)
    assert scores["loss_sum"] / scores["loss_count"] == pytest.approx(1 / 6, rel=0.01)
    assert scores["correct"] / scores["targets"] == pytest.approx(adding_task.CHANCE, rel=0.03)


def test_streams_never_overlap_and_repeat_by_seed():
    def draw(stream, seed=1):
        return copy_task.copy_memory(stream_rng(seed, stream), count=1000, delay=5, recall=10)[0]

    rows = {s: {tuple(r) for r in draw(s)} for s in ("train", "validation", "heldout")}
    assert not rows["train"] & rows["validation"] and not rows["train"] & rows["heldout"]
    assert not rows["validation"] & rows["heldout"]
    assert (draw("train") == draw("train")).all() and not (draw("train") == draw("train", 2)).all()


# -------------------------------------------------------------------------------- config

@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.task=copy", "data.window=3"],
         "data.window belongs to data.task: echo; remove it, since this config has data.task: "
         "copy"),
        (["data.task=adding", "data.delay=30"], "data.delay belongs to data.task: copy"),
        (["data.delay=30"], "data.delay belongs to data.task: copy; remove it, since this "
                            "config has data.task: echo"),
        ([*COPY, "model.kind=mlp"], "data.task: copy needs an output per timestep"),
        ([*COPY, "model.stateful=true"], "data.task: copy trains on batches of independent"),
        ([*ADDING, "train.target_accuracy=0.9"], "use train.target_loss"),
        (["train.target_loss=0.1"], "train.target_loss is for the memory tasks"),
        (["data.task=adding", "data.length=1"], "data.length must be ≥ 2 for data.task: adding"),
    ],
)
def test_a_key_of_another_task_or_a_kind_that_makes_no_sense_is_one_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_memory_tasks_default_to_their_papers_recipe_and_save_only_their_keys(tmp_path):
    from echo_cli.config.loading import to_yaml

    cfg = load_config(overrides=COPY)
    assert (cfg.model.stateful, cfg.train.batch_size, cfg.train.clipnorm) == (False, 32, 1.0)
    saved = to_yaml(cfg)
    assert "delay: 6" in saved and "window:" not in saved and "n_unique:" not in saved
    (tmp_path / "c.yaml").write_text(saved)
    assert load_config(tmp_path / "c.yaml") == cfg  # the saved config reloads as it was
    echo = to_yaml(load_config())
    assert "task: echo" in echo and "delay:" not in echo


# -------------------------------------------------------------------------------- models

@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn", "tcn", "conv1d"])
def test_every_sequence_kind_builds_for_copy(kind):
    cfg = load_config(overrides=[*COPY, f"model.kind={kind}", "model.units=4"])
    model = build(cfg)
    assert tuple(model.input_shape) == (None, 12) and tuple(model.output_shape) == (None, 12, 10)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn", "tcn", "conv1d", "mlp"])
def test_every_kind_builds_for_adding(kind):
    cfg = load_config(overrides=[*ADDING, f"model.kind={kind}", "model.units=4"])
    model = build(cfg)
    assert tuple(model.input_shape) == (None, 8, 2) and tuple(model.output_shape) == (None, 1)


@pytest.mark.parametrize(("steps", "kernel", "dilations"),
                         [(12, 8, [1]), (70, 8, [1, 2, 4]), (220, 8, [1, 2, 4, 8, 16]),
                          (1020, 8, [1, 2, 4, 8, 16, 32, 64]), (100, 2, [1, 2, 4, 8, 16, 32])])
def test_a_tcns_receptive_field_covers_the_sequence(steps, kernel, dilations):
    assert convolutional.tcn_dilations(steps, kernel) == dilations
    field = 1 + 2 * (kernel - 1) * sum(dilations)
    assert field >= steps and (len(dilations) == 1 or field - 2 * (kernel - 1) * dilations[-1]
                               < steps)


def test_a_tcn_is_causal_and_residual():
    """An output at step t changes with the input at t and before, never after."""
    cfg = load_config(overrides=[*COPY, "model.kind=tcn", "model.units=6", "model.kernel_size=2"])
    model = build(cfg)
    assert {"tcn1_skip", "tcn1_add", "tcn2_add"} <= {layer.name for layer in model.layers}
    x = np.full((1, 12), 1, dtype="int32")
    changed = x.copy()
    changed[0, 7] = 5
    before, after = model.predict(x, verbose=0), model.predict(changed, verbose=0)
    assert np.allclose(before[0, :7], after[0, :7]) and not np.allclose(before[0, 7:],
                                                                         after[0, 7:])


# -------------------------------------------------------------------------------- training

@pytest.mark.parametrize("overrides", [COPY, ADDING], ids=["copy", "adding"])
def test_a_memory_task_trains_and_reports_its_baseline(tmp_path, monkeypatch, overrides):
    from pathlib import Path

    config = Path(__file__).resolve().parent.parent / "configs" / (
        "copy_memory.yaml" if "copy" in overrides[0] else "adding.yaml")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", str(config), "--out", "r", *sets([
        *overrides[1:], "train.epochs=30", "eval.sequences=64", "model.units=8",
        "train.batch_size=8", "train.target_accuracy=null", "train.target_loss=null",
        "model.kind=gru"])])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "memoryless baseline" in text and "× the baseline" in text
    from echo_cli.store.rundir import read_metrics

    m = read_metrics(tmp_path / "r")
    assert m.task == overrides[0].split("=")[1] and m.updates == 30 and m.samples == 30 * 8
    assert m.baseline_loss == load_config(overrides=overrides).baseline_loss
    assert m.heldout_loss is not None and m.heldout_sequences == 64
    if m.task == "copy":
        assert m.heldout_targets == 64 * 3 and m.chance_accuracy == 1 / 8
    else:  # the accuracy figure is the share of sums within the tolerance
        assert m.tolerance == 0.04 and m.heldout_targets == 64
        assert m.heldout_accuracy == m.heldout_correct / 64


def test_the_same_seed_gives_the_same_numbers(small_config):
    from echo_cli.training import loop as train

    cfg = load_config(overrides=[*COPY, "model.kind=tcn", "model.units=4", "train.epochs=12",
                                 "train.batch_size=4", "eval.sequences=16"])
    first = train.train(cfg)[1].metrics(cfg).to_dict()
    second = train.train(cfg)[1].metrics(cfg).to_dict()
    for measured in ("train_seconds", "peak_rss_mb"):
        first.pop(measured), second.pop(measured)
    assert first == second


def test_the_tutorial_engine_is_the_echos_only(tmp_path):
    from pathlib import Path

    config = Path(__file__).resolve().parent.parent / "configs" / "copy_memory.yaml"
    result = runner.invoke(app, ["train", str(config), "--engine", "tutorial", "--out",
                                 str(tmp_path / "r")])
    assert result.exit_code == 2 and "--engine tutorial is the tutorial's echo loop" in \
        result.stderr


def test_check_data_shows_a_task_its_target_and_its_baseline():
    result = runner.invoke(app, ["check-data", *sets(COPY)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "copy memory, T=6: 12 steps" in text and "3·ln 8/12" in text
    result = runner.invoke(app, ["check-data", *sets(ADDING)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "adding problem, T=8" in text and "baseline loss 0.1667 = 1/6" in text
