"""Exact framing on small hand-written sequences, plus invariants on random ones."""

import numpy as np
import pytest

from echo_cli.tasks import framing as data
from echo_cli.tasks.base import stream_rng
from echo_cli.tasks.framing import MISSING, Framing, frame

SEQ = np.array([[10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]])  # value = 10 + t


def test_echo_current_framing_is_identity():
    plan = Framing(length=6, lag=0, window=1, batch_size=1)
    seq = np.array([[3, 1, 4, 1, 5, 9]])
    f = frame(seq, plan)
    assert f.t.tolist() == [0, 1, 2, 3, 4, 5]
    assert f.x.tolist() == [[[3], [1], [4], [1], [5], [9]]]
    assert f.y.tolist() == [[3, 1, 4, 1, 5, 9]]


def test_beginners_mistake_framing_has_24_rows_of_one_step():
    plan = Framing(length=25, lag=1, window=1, batch_size=6)
    seq = np.arange(100, 125)[None, :]
    f = frame(seq, plan)
    assert data.rows_per_sequence(plan) == 24
    assert data.trimmed_rows(plan) == 0
    assert f.t.tolist() == list(range(1, 25))
    assert f.x[0, :, 0].tolist() == list(range(101, 125))  # X(t)
    assert f.y[0].tolist() == list(range(100, 124))  # X(t-1)


def test_echo_lag_framing_matches_the_tutorial():
    # The tutorial keeps rows t = 5..24: t = 4 is valid too, but trimmed to fill batches of 5.
    plan = Framing(length=25, lag=1, window=5, batch_size=5)
    seq = np.arange(25)[None, :]
    f = frame(seq, plan)
    assert data.trimmed_rows(plan) == 1
    assert f.t.tolist() == list(range(5, 25))
    assert f.x[0, 0].tolist() == [1, 2, 3, 4, 5]
    assert f.x[0, -1].tolist() == [20, 21, 22, 23, 24]
    assert f.y[0].tolist() == list(range(4, 24))
    assert [t for t, _ in data.dropped_rows(plan)] == [0, 1, 2, 3, 4]
    assert "trimmed" in data.dropped_rows(plan)[-1][1]


def test_echo_lag_without_batches_keeps_row_four():
    f = frame(np.arange(25)[None, :], Framing(length=25, lag=1, window=5, batch_size=1))
    assert f.t.tolist() == list(range(4, 25))
    assert f.x[0, 0].tolist() == [0, 1, 2, 3, 4] and f.y[0, 0] == 3


@pytest.mark.parametrize(
    "plan",
    [
        Framing(length=25, lag=1, window=5, batch_size=5),
        Framing(length=25, lag=3, window=7, batch_size=3),
        Framing(length=25, lag=0, window=1, batch_size=5),
        Framing(length=25, lag=2, window=4, missing="pad", batch_size=1),
        Framing(length=25, lag=1, window=5, context="full", missing="mask", batch_size=4),
    ],
)
def test_target_is_the_value_lag_steps_back(plan):
    seqs = data.generate_sequences(np.random.default_rng(0), count=7, length=25, n_unique=100)
    f = frame(seqs, plan)
    for n in range(len(seqs)):
        for i, t in enumerate(f.t):
            assert f.y[n, i] == seqs[n, t - plan.lag]
            assert f.x[n, i, -1] == seqs[n, t]  # the window always ends at X(t)
    assert len(f.t) % plan.batch_size == 0


def test_pad_keeps_early_rows_with_missing_steps():
    plan = Framing(length=6, lag=1, window=3, missing="pad", batch_size=1)
    f = frame(SEQ[:, :6], plan)
    assert f.t.tolist() == [1, 2, 3, 4, 5]  # t = 0 has no target and is always dropped
    assert f.x[0].tolist() == [
        [MISSING, 10, 11],
        [10, 11, 12],
        [11, 12, 13],
        [12, 13, 14],
        [13, 14, 15],
    ]
    assert f.y[0].tolist() == [10, 11, 12, 13, 14]


def test_mask_frames_exactly_like_pad():
    pad = frame(SEQ, Framing(length=12, lag=2, window=4, missing="pad"))
    mask = frame(SEQ, Framing(length=12, lag=2, window=4, missing="mask"))
    assert np.array_equal(pad.x, mask.x) and np.array_equal(pad.y, mask.y)


def test_full_context_is_left_padded_to_the_length():
    plan = Framing(length=4, lag=1, window=2, missing="pad", context="full", batch_size=1)
    f = frame(np.array([[7, 8, 9, 6]]), plan)
    assert data.timesteps(plan) == 4
    assert f.t.tolist() == [1, 2, 3]
    assert f.x[0].tolist() == [[-1, -1, 7, 8], [-1, 7, 8, 9], [7, 8, 9, 6]]
    assert f.y[0].tolist() == [7, 8, 9]


def test_sequence_target_marks_unknowable_positions():
    plan = Framing(length=6, lag=2, window=4, target="sequence", batch_size=1)
    f = frame(np.array([[50, 51, 52, 53, 54, 55]]), plan)
    assert f.t.tolist() == [3, 4, 5]
    assert f.x[0].tolist() == [[50, 51, 52, 53], [51, 52, 53, 54], [52, 53, 54, 55]]
    # position p's target is X(p-2): the first two of each window lie before the window
    assert f.y[0].tolist() == [[-1, -1, 50, 51], [-1, -1, 51, 52], [-1, -1, 52, 53]]


def test_sequence_target_with_padding_leaves_out_positions_before_the_sequence():
    plan = Framing(length=4, lag=1, window=3, missing="pad", target="sequence", batch_size=1)
    f = frame(np.array([[5, 6, 7, 8]]), plan)
    assert f.t.tolist() == [1, 2, 3]
    assert f.x[0].tolist() == [[-1, 5, 6], [5, 6, 7], [6, 7, 8]]
    assert f.y[0].tolist() == [[-1, -1, 5], [-1, 5, 6], [-1, 6, 7]]


def test_state_comes_from_one_batch_earlier():
    plan = Framing(length=25, lag=1, window=1, batch_size=6)
    sources = data.state_sources(plan, stateful=True)
    assert sources[:6] == [None] * 6
    assert sources[6] == 1 and sources[23] == 18  # row t=7 starts from t=1, t=24 from t=18
    assert data.state_sources(plan, stateful=False) == [None] * 24


def test_one_hot_and_decode_round_trip():
    ids = np.array([[2, MISSING, 0]])
    enc = data.one_hot(ids, 3)
    assert enc.tolist() == [[[0, 0, 1], [0, 0, 0], [1, 0, 0]]]
    assert data.decode(enc[:, [0, 2]]).tolist() == [[2, 0]]


def test_streams_are_reproducible_and_independent():
    a = data.generate_sequences(stream_rng(1, "train"), count=3, length=25, n_unique=100)
    b = data.generate_sequences(stream_rng(1, "train"), count=3, length=25, n_unique=100)
    c = data.generate_sequences(stream_rng(1, "heldout"), count=3, length=25, n_unique=100)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() < 100


def frame_one_by_one(seq: list[int], plan: Framing) -> tuple[list, list]:
    """The framing written as plain loops, one row and one step at a time: the reference."""
    steps = data.timesteps(plan)
    xs, ys = [], []
    for t in data.row_times(plan):
        window = [seq[p] if p >= 0 else MISSING for p in range(t - steps + 1, t + 1)]
        xs.append(window)
        if plan.target == "value":
            ys.append(seq[t - plan.lag])
        else:
            ys.append([seq[p - plan.lag] if p - plan.lag >= 0 and k >= plan.lag else MISSING
                       for k, p in enumerate(range(t - steps + 1, t + 1))])
    return xs, ys


@pytest.mark.parametrize(
    "plan",
    [
        Framing(length=25, lag=1, window=5, batch_size=5),
        Framing(length=25, lag=3, window=4, missing="pad", target="sequence", batch_size=2),
        Framing(length=25, lag=2, window=5, context="full", missing="mask", batch_size=1),
    ],
)
def test_vectorised_framing_equals_the_loop_on_thousands_of_sequences(plan):
    seqs = data.generate_sequences(np.random.default_rng(0), count=2000, length=25, n_unique=100)
    f = frame(seqs, plan)
    for n in (0, 1, 999, 1999):
        xs, ys = frame_one_by_one(seqs[n].tolist(), plan)
        assert f.x[n].tolist() == xs and f.y[n].tolist() == ys
    assert f.x.shape[0] == f.y.shape[0] == 2000
