"""Selective copying and induction heads: the generators against s4's `torch_copying_data` and
safari's `generate_induction_head`, exact small examples, baselines, keys, check-data, a tiny
training run each, and `at_length` for every task that has one."""

import math

import numpy as np
import pytest
from helpers import CONFIGS, invoke, one_line_error, sets

from echo_cli import tasks
from echo_cli.config.loading import load_config
from echo_cli.models.base import MISSING
from echo_cli.store.rundir import read_metrics
from echo_cli.tasks import induction as induction_task
from echo_cli.tasks import selective_copy as selective_task
from echo_cli.tasks.base import stream_rng

SELECTIVE = ["data.task=selective_copy", "data.noise=6", "data.tokens=3", "data.vocab=6"]
INDUCTION = ["data.task=induction", "data.length=8", "data.vocab=5"]


# -------------------------------------------------------------------------------- selective copy

@pytest.mark.parametrize(("noise", "tokens", "vocab"), [(1, 1, 3), (10, 5, 10), (64, 4, 16)])
def test_selective_copying_is_s4s_layout(noise, tokens, vocab):
    """s4: tokens from 1..A-2 at M distinct sorted slots among the first L+M, blanks (0)
    elsewhere, then M markers (A-1); the target is the tokens in order."""
    x, y = selective_task.selective_copying(np.random.default_rng(0), count=300, noise=noise,
                                            tokens=tokens, vocab=vocab)
    assert x.shape == (300, noise + 2 * tokens) and y.shape == (300, tokens)
    assert ((y >= 1) & (y <= vocab - 2)).all()
    assert (x[:, noise + tokens :] == vocab - 1).all()  # the M markers
    data = x[:, : noise + tokens]
    assert (data != vocab - 1).all()  # no marker among the data slots
    assert ((data != 0).sum(axis=1) == tokens).all()  # exactly M tokens, M distinct slots
    for row, want in zip(data, y, strict=True):
        positions = np.flatnonzero(row)
        assert (np.diff(positions) > 0).all() and positions.max() < noise + tokens
        assert row[positions].tolist() == want.tolist()  # their order kept


def test_selective_copying_draws_its_positions_uniformly():
    """Each of the first L+M slots holds a token with probability M/(L+M)."""
    x, _ = selective_task.selective_copying(np.random.default_rng(1), count=20_000, noise=6,
                                            tokens=2, vocab=5)
    share = (x[:, :8] != 0).mean(axis=0)
    assert np.allclose(share, 2 / 8, atol=0.015)
    tokens = x[:, :8][x[:, :8] != 0]
    assert np.allclose(np.bincount(tokens, minlength=4)[1:] / tokens.size, 1 / 3, atol=0.015)


def test_plain_copying_puts_the_tokens_first():
    x, y = selective_task.selective_copying(np.random.default_rng(2), count=50, noise=5,
                                            tokens=3, vocab=7, variable=False)
    assert (x[:, :3] == y).all() and (x[:, 3:8] == 0).all() and (x[:, 8:] == 6).all()


def test_selective_copying_small_example():
    x, y = selective_task.selective_copying(np.random.default_rng(0), count=2, noise=4,
                                            tokens=3, vocab=6)
    assert x.tolist() == [[4, 0, 0, 3, 0, 3, 0, 5, 5, 5], [0, 2, 0, 2, 0, 1, 0, 5, 5, 5]]
    assert y.tolist() == [[4, 3, 3], [2, 2, 1]]
    x, y = selective_task.selective_copying(np.random.default_rng(0), count=1, noise=4,
                                            tokens=3, vocab=6, variable=False)
    assert x.tolist() == [[4, 3, 3, 0, 0, 0, 0, 5, 5, 5]] and y.tolist() == [[4, 3, 3]]


def test_selective_copying_trains_and_scores_the_marker_steps_only():
    """The weights make Keras's mean over every step the mean over the recalled tokens, and a
    uniform guess of the tokens scores the baseline ln(A-2) and chance 1/(A-2)."""
    cfg = load_config(overrides=SELECTIVE)
    task = cfg.task
    x, y, w = task.batch(cfg, np.random.default_rng(0), 40)
    assert x.shape == y.shape == w.shape == (40, 12)
    assert (x == selective_task.selective_copying(np.random.default_rng(0), count=40, noise=6,
                                                  tokens=3, vocab=6)[0] + 1).all()
    assert (w[:, :-3] == 0).all() and (w[:, -3:] == 12 / 3).all() and (y[:, :-3] == 0).all()
    ce = np.random.default_rng(1).random(y.shape)
    assert (ce * w).sum() / ce.size == pytest.approx(ce[:, -3:].mean())
    probs = np.zeros((40, 12, 6))
    probs[..., 1:5] = 1 / 4
    scores = task.score(cfg, probs, x, y)
    assert scores["targets"] == 40 * 3 and scores["loss_count"] == 40 * 3
    assert scores["loss_sum"] / scores["loss_count"] == pytest.approx(math.log(4))
    assert cfg.baseline_loss == math.log(4) and cfg.chance_accuracy == 1 / 4


# -------------------------------------------------------------------------------- induction

@pytest.mark.parametrize(("length", "vocab"), [(3, 3), (8, 5), (64, 16)])
def test_induction_head_is_safaris_layout(length, vocab):
    """safari, induction_len 1, one trigger: ordinary tokens, the trigger at one step p in
    0..length-3 and at the end, nowhere else; the answer is the token after the first."""
    x, y = induction_task.induction_head(np.random.default_rng(0), count=400, length=length,
                                         vocab=vocab)
    trigger = vocab - 1
    assert x.shape == (400, length + 1) and y.shape == (400,)
    assert ((x == trigger).sum(axis=1) == 2).all() and (x[:, -1] == trigger).all()
    assert ((x >= 0) & (x <= trigger)).all()
    p = (x[:, :-1] == trigger).argmax(axis=1)
    assert (p <= length - 3).all()
    assert (y == x[np.arange(400), p + 1]).all() and (y != trigger).all()


def test_induction_heads_draw_the_trigger_and_the_answer_uniformly():
    x, y = induction_task.induction_head(np.random.default_rng(1), count=30_000, length=6,
                                         vocab=4)
    p = (x[:, :-1] == 3).argmax(axis=1)
    assert np.allclose(np.bincount(p) / len(p), 1 / 4, atol=0.015)  # p in 0..3
    assert np.allclose(np.bincount(y) / len(y), 1 / 3, atol=0.015)  # 0..2


def test_induction_head_small_example():
    x, y = induction_task.induction_head(np.random.default_rng(0), count=2, length=8, vocab=5)
    assert x.tolist() == [[3, 2, 2, 4, 1, 0, 0, 0, 4], [0, 3, 2, 4, 2, 2, 3, 2, 4]]
    assert y.tolist() == [1, 2]


def test_induction_trains_and_scores_the_answer_only():
    cfg = load_config(overrides=INDUCTION)
    sig = cfg.signature
    assert (sig.steps, sig.symbols, sig.outputs, sig.per_step) == (9, 5, 5, False)
    x, y, w = cfg.task.batch(cfg, np.random.default_rng(0), 30)
    assert x.shape == (30, 9) and y.shape == w.shape == (30, 1) and (w == 1).all()
    probs = np.zeros((30, 5))
    probs[:, :4] = 1 / 4
    scores = cfg.task.score(cfg, probs, x, y)
    assert scores["targets"] == 30
    assert scores["loss_sum"] / 30 == pytest.approx(math.log(4))
    assert cfg.baseline_loss == math.log(4) and cfg.chance_accuracy == 1 / 4


# -------------------------------------------------------------------------------- both

@pytest.mark.parametrize("overrides", [SELECTIVE, INDUCTION], ids=["selective", "induction"])
def test_streams_never_overlap_and_repeat_by_seed(overrides):
    cfg = load_config(overrides=[*overrides[:1], "data.vocab=16"])

    def draw(stream, seed=1):
        return cfg.task.generate(cfg, stream_rng(seed, stream), 500)[0]

    rows = {s: {tuple(r) for r in draw(s)} for s in ("train", "validation", "heldout")}
    assert not rows["train"] & rows["validation"] and not rows["train"] & rows["heldout"]
    assert not rows["validation"] & rows["heldout"]
    assert (draw("train") == draw("train")).all() and not (draw("train") == draw("train", 2)).all()


@pytest.mark.parametrize(("overrides", "seq", "kept"), [
    (SELECTIVE, [0, 3, 0, 4, 0, 0, 1, 0, 0, 5, 5, 5], [1, 3, 6]),
    (INDUCTION, [1, 4, 2, 0, 3, 0, 1, 2, 4], [0, 2, 3, 4, 5, 6, 7]),
], ids=["selective", "induction"])
def test_the_probes_ask_only_about_tokens_to_remember(overrides, seq, kept):
    """inspect's probes read X(t-k) only where it is a token (not a blank, marker or
    trigger), as classes of the task's alphabet."""
    from echo_cli.training.loop import build

    cfg = load_config(overrides=[*overrides, "model.kind=gru", "model.units=3"])
    seqs = np.array([seq])
    states = cfg.task.state_columns(build(cfg), cfg, seqs)
    assert states.trace.h.shape == (1, len(seq), 3)
    assert np.flatnonzero(cfg.task.probe_keep(states.values[0])).tolist() == kept
    assert (states.values[0, kept] == seqs[0, kept]).all() and (states.values != MISSING).sum() \
        == len(kept)
    assert cfg.task.probe_classes(cfg) == cfg.data.vocab


def test_state_png_marks_what_the_last_step_recalls():
    cfg = load_config(overrides=SELECTIVE)
    seq = np.array([0, 3, 0, 4, 0, 0, 1, 0, 0, 5, 5, 5])
    labels, mark, shade = cfg.task.picture(cfg, seq, np.arange(12))
    assert labels[3] == "4" and mark[0] == 6 and shade[:2] == (9, 11)
    cfg = load_config(overrides=INDUCTION)
    seq = np.array([1, 4, 2, 0, 3, 0, 1, 2, 4])
    labels, mark, shade = cfg.task.picture(cfg, seq, np.arange(9))
    assert labels[1] == "⇒" and mark[0] == 2 and shade is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.task=induction", "data.noise=3"],
         "data.noise belongs to data.task: selective_copy; remove it, since this config has "
         "data.task: induction"),
        (["data.task=selective_copy", "data.delay=3"], "data.delay belongs to data.task: copy"),
        (["data.task=copy", "data.tokens=3"], "data.tokens belongs to data.task: selective_copy"),
        ([*SELECTIVE, "model.kind=mlp"], "data.task: selective_copy needs an output per timestep"),
        ([*INDUCTION, "model.stateful=true"], "data.task: induction trains on batches of "
                                              "independent"),
        (["data.task=induction", "data.length=2"], "data.length must be ≥ 3, got 2"),
        (["data.task=selective_copy", "data.vocab=2"], "data.vocab must be ≥ 3, got 2"),
    ],
)
def test_a_key_of_another_task_is_refused_in_one_line(overrides, message):
    one_line_error(invoke("check-data", *sets(overrides)), message)


def test_check_data_shows_each_task_its_target_and_its_baseline():
    result = invoke("check-data", "--set", "data.task=selective_copy")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "selective copying, L=64: 72 steps = 4 tokens (1..14)" in text
    assert "ln 14" in text and "batch_size=64" in text
    result = invoke("check-data", "--set", "data.task=induction")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "induction heads, length 64: 65 steps" in text and "ln 15" in text
    result = invoke("check-data", *sets([*SELECTIVE, "data.variable=false"]))
    assert "plain copying, L=6" in " ".join(result.output.split())


@pytest.mark.parametrize("overrides", [SELECTIVE, INDUCTION], ids=["selective", "induction"])
def test_a_tiny_run_trains_and_reports_the_recalled_positions(tmp_path, monkeypatch, overrides):
    config = CONFIGS / f"{overrides[0].split('=')[1]}.yaml"
    monkeypatch.chdir(tmp_path)
    result = invoke("train", config, "--out", "r", *sets([
        *overrides[1:], "train.epochs=12", "train.batch_size=8", "eval.sequences=40",
        "model.units=8", "train.target_accuracy=null"]))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "memoryless baseline" in text and "held-out examples" in text
    m = read_metrics(tmp_path / "r")
    cfg = load_config(overrides=overrides)
    assert m.task == cfg.data.task and m.updates == 12 and m.heldout_sequences == 40
    assert m.baseline_loss == cfg.baseline_loss and m.chance_accuracy == 1 / 4
    assert m.heldout_targets == (40 * 3 if m.task == "selective_copy" else 40)
    assert m.heldout_accuracy == m.heldout_correct / m.heldout_targets


# -------------------------------------------------------------------------------- at_length

AT_LENGTH = {"copy": {"data.delay": 7}, "adding": {"data.length": 7},
             "selective_copy": {"data.noise": 7}, "induction": {"data.length": 7}}


@pytest.mark.parametrize("name", tasks.names())
def test_at_length_sets_the_horizon_key(name):
    cfg = load_config(overrides=[f"data.task={name}"])
    task = cfg.task
    updates = task.at_length(cfg, 7)
    assert updates == AT_LENGTH.get(name)
    if updates is None:
        return
    longer = load_config(overrides=[f"data.task={name}",
                                    *(f"{k}={v}" for k, v in updates.items())])
    assert task.horizon(longer) == 7 and task.steps(longer) != task.steps(cfg)
    same = task.at_length(cfg, task.horizon(cfg))
    assert all(getattr(cfg.data, k.removeprefix("data.")) == v for k, v in same.items())
