"""Prediction and held-out scoring: stateful models reset per sequence, side by side."""

import numpy as np

from echo_cli.models import factory as models
from echo_cli.models.base import model_ids
from echo_cli.stats import wilson_interval
from echo_cli.tasks.base import stream_rng
from echo_cli.tasks.echo import plan
from echo_cli.tasks.framing import frame, generate_sequences
from echo_cli.training import evaluate
from echo_cli.training import loop as train


def test_predictions_do_not_depend_on_the_sequences_before(small_config, monkeypatch):
    cfg = small_config("lag1", "train.epochs=30")
    model, _ = train.train(cfg, evaluate_heldout=False)
    seqs = generate_sequences(stream_rng(5, "heldout"), count=7, length=25, n_unique=20)
    x = model_ids(frame(seqs, plan(cfg)).x)
    together = evaluate.Predictor(model, cfg, sequences=7)(x).argmax(-1)
    alone = evaluate.Predictor(model, cfg, sequences=1)(x[3:4]).argmax(-1)
    np.testing.assert_array_equal(together[3], alone[0])
    monkeypatch.setattr(evaluate, "EVAL_CHUNK", 3)  # chunks of 3, 3 and a padded 1
    chunked = evaluate.Predictor(model, cfg, sequences=7)(x).argmax(-1)
    np.testing.assert_array_equal(chunked, together)
    # and the side-by-side evaluation equals the tutorial's one-sequence-at-a-time predict
    b = cfg.train.batch_size
    for n in (0, 3, 6):
        models.reset_states(model)
        probs = model.predict(x[n], batch_size=b, verbose=0)
        models.reset_states(model)
        np.testing.assert_array_equal(probs.argmax(-1), together[n])


def test_heldout_accuracy_counts_only_scored_targets(small_config):
    cfg = small_config("lag1", "train.epochs=20", "data.target=sequence", "eval.sequences=30",
                       "eval.examples=2")
    model, _ = train.train(cfg, evaluate_heldout=False)
    held = evaluate.evaluate(model, cfg)
    framed = frame(cfg.task.sequences(cfg, "heldout", 30), plan(cfg))
    scored = int((framed.y >= 0).sum())
    unscored = held.extra["heldout_unscored_positions"]
    assert held.targets == scored and unscored == framed.y.size - scored
    assert held.accuracy == held.correct / held.targets
    assert (held.ci95_low, held.ci95_high) == wilson_interval(held.correct, held.targets)
    per_position = held.extra["heldout_per_position"]
    assert len(held.examples) == 2 and len(per_position) == framed.y.shape[-1]
    assert per_position[0] is None  # the first position's target is before the window


def test_heldout_validation_and_training_streams_differ(small_config):
    cfg = small_config("lag1")
    seqs = {s: cfg.task.sequences(cfg, s, 50) for s in ("heldout", "validation")}
    train_seqs = generate_sequences(stream_rng(cfg.seed, "train"), count=50, length=25,
                                    n_unique=cfg.data.n_unique)
    rows = {s: {tuple(r) for r in v} for s, v in {**seqs, "train": train_seqs}.items()}
    assert not rows["heldout"] & rows["train"] and not rows["validation"] & rows["train"]
    assert not rows["heldout"] & rows["validation"]
