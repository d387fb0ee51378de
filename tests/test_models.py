"""Model shapes, one case per framing, every kind on every task, and the one-hot front end."""

import numpy as np
import pytest

from echo_cli import models as kinds
from echo_cli import tasks
from echo_cli.config.loading import ConfigError, load_config
from echo_cli.models import convolutional
from echo_cli.models import factory as models
from echo_cli.models.base import model_ids
from echo_cli.training.loop import build


@pytest.mark.parametrize(
    ("overrides", "in_shape", "out_shape"),
    [
        ([], (5, 5), (5, 100)),
        (["model.stateful=false"], (None, 5), (None, 100)),
        (["data.window=1", "train.batch_size=6"], (6, 1), (6, 100)),
        (["data.target=sequence"], (5, 5), (5, 5, 100)),
        (["data.context=full", "data.missing=pad", "train.batch_size=4"], (4, 25), (4, 100)),
    ],
)
def test_shapes(overrides, in_shape, out_shape):
    model = build(load_config(overrides=overrides))
    assert tuple(model.input_shape) == in_shape
    assert tuple(model.output_shape) == out_shape


def test_one_hot_front_end_is_frozen_identity_with_zero_padding():
    cfg = load_config(overrides=["data.n_unique=4", "model.stateful=false"])
    model = build(cfg)
    table = model.get_layer("one_hot").get_weights()[0]
    assert table.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert not model.get_layer("one_hot").trainable
    assert model_ids(np.array([[-1, 0, 3]])).tolist() == [[0, 1, 4]]


def test_mask_adds_a_masking_layer_and_pad_does_not():
    names = {layer.name for layer in build(
        load_config(overrides=["data.missing=mask"])).layers}
    assert "mask" in names
    names = {layer.name for layer in build(
        load_config(overrides=["data.missing=pad"])).layers}
    assert "mask" not in names


def test_with_batch_keeps_the_weights():
    cfg = load_config(overrides=["model.units=3", "data.n_unique=5"])
    model = build(cfg)
    clone = models.with_batch(model, cfg.signature, cfg.model, seed=cfg.seed, batch_size=40)
    assert clone.input_shape == (40, 5)
    for a, b in zip(model.get_weights(), clone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# One small config per task, so that every kind meets every task.
TASK_CASES = {"echo": ["data.n_unique=6", "data.window=3"],
              "echo/sequence": ["data.n_unique=6", "data.window=3", "data.target=sequence"],
              "echo/mask": ["data.n_unique=6", "data.missing=mask"],
              "copy": ["data.task=copy", "data.delay=4", "data.recall=2"],
              "adding": ["data.task=adding", "data.length=6"]}
for _name in tasks.names():  # a task added to the registry meets every kind here too
    TASK_CASES.setdefault(_name, [f"data.task={_name}"])


@pytest.mark.parametrize("kind", kinds.names())
@pytest.mark.parametrize("case", list(TASK_CASES))
def test_every_kind_builds_for_every_task_its_properties_allow(kind, case):
    """Built with the task's signature where the kind's properties allow it (outputs per step
    need a kind that keeps the steps, masking one that skips steps); refused in one line that
    names the kinds that qualify, from the registry, where they do not."""
    overrides = [*TASK_CASES[case], f"model.kind={kind}", "model.stateful=false", "model.units=4"]
    sig = load_config(overrides=[*TASK_CASES[case], "model.stateful=false"]).signature
    props = kinds.get(kind)
    fits = (props.per_step or not sig.per_step) and (props.masking or not sig.mask)
    if not fits:
        with pytest.raises(ConfigError) as err:
            load_config(overrides=overrides)
        message = str(err.value)
        assert "\n" not in message
        wanted = kinds.having("per_step" if sig.per_step and not props.per_step else "masking")
        assert kinds.words(wanted) in message and kind in message
        return
    cfg = load_config(overrides=overrides)
    model = build(cfg)
    steps = (sig.steps,) if sig.per_step else ()
    assert tuple(model.output_shape) == (None, *steps, sig.outputs or 1)
    assert tuple(model.input_shape) == ((None, sig.steps) if sig.symbols is not None
                                        else (None, sig.steps, sig.features))


@pytest.mark.parametrize("kind", kinds.names())
def test_state_is_refused_for_a_kind_that_carries_none(kind):
    overrides = [f"model.kind={kind}", "model.stateful=true", "model.units=4"]
    if kinds.get(kind).stateful:
        assert build(load_config(overrides=overrides)).input_shape[0] == 5  # a fixed batch
        return
    with pytest.raises(ConfigError) as err:
        load_config(overrides=overrides)
    qualified = kinds.words(kinds.having("stateful"))
    assert f"carries its state from batch to batch ({qualified})" in str(err.value)


def test_causal_convolutions_cover_the_window():
    assert convolutional.conv_dilations(1) == [1]
    assert convolutional.conv_dilations(5) == [1, 2, 4]  # receptive field 8 >= 5
    assert convolutional.conv_dilations(25) == [1, 2, 4, 8, 16]  # 32 >= 25


def test_parameters_and_multiply_adds_are_counted_by_hand():
    cfg = load_config(overrides=["data.n_unique=4", "data.window=2", "model.units=3",
                                 "model.stateful=false"])
    # LSTM: kernel 4x12 + recurrent 3x12 + bias 12 = 96; Dense 3x4 + 4 = 16
    # per sample: 2 steps x (48 + 36) + 12 = 180 multiply-adds; the one-hot lookup costs none
    assert models.size(build(cfg)) == {"parameters": 112, "frozen_parameters": 5 * 4,
                                       "multiply_adds_per_sample": 180}
    mlp = load_config(overrides=["data.n_unique=4", "data.window=2", "model.units=3",
                                 "model.stateful=false", "model.kind=mlp"])
    # hidden: 8x3 + 3 = 27, output: 3x4 + 4 = 16; multiply-adds 24 + 12
    assert models.size(build(mlp)) == {"parameters": 43, "frozen_parameters": 20,
                                       "multiply_adds_per_sample": 36}
    gru = load_config(overrides=["data.n_unique=4", "data.window=2", "model.units=3",
                                 "model.stateful=false", "model.kind=gru"])
    # GRU: kernel 4x9 + recurrent 3x9 + two biases 2x9 = 81; 2 x (36 + 27) + 12 multiply-adds
    assert models.size(build(gru)) == {"parameters": 97, "frozen_parameters": 20,
                                       "multiply_adds_per_sample": 138}
    conv = load_config(overrides=["data.n_unique=4", "data.window=2", "model.units=3",
                                  "model.stateful=false", "model.kind=conv1d",
                                  "data.target=sequence"])
    # one causal conv (kernel 2x4x3 + 3) at 2 positions, then the Dense at both positions
    assert models.size(build(conv)) == {"parameters": 27 + 16, "frozen_parameters": 20,
                                        "multiply_adds_per_sample": 2 * 24 + 2 * 12}
