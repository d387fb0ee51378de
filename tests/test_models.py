"""Model shapes, one case per framing, and the one-hot front end."""

import numpy as np
import pytest

from echo_cli.config.loading import load_config
from echo_cli.models import factory as models


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
    model = models.build_model(load_config(overrides=overrides))
    assert tuple(model.input_shape) == in_shape
    assert tuple(model.output_shape) == out_shape


def test_one_hot_front_end_is_frozen_identity_with_zero_padding():
    cfg = load_config(overrides=["data.n_unique=4", "model.stateful=false"])
    model = models.build_model(cfg)
    table = model.get_layer("one_hot").get_weights()[0]
    assert table.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert not model.get_layer("one_hot").trainable
    assert models.model_input(np.array([[-1, 0, 3]])).tolist() == [[0, 1, 4]]


def test_mask_adds_a_masking_layer_and_pad_does_not():
    names = {layer.name for layer in models.build_model(
        load_config(overrides=["data.missing=mask"])).layers}
    assert "mask" in names
    names = {layer.name for layer in models.build_model(
        load_config(overrides=["data.missing=pad"])).layers}
    assert "mask" not in names


def test_copy_with_batch_keeps_the_weights():
    cfg = load_config(overrides=["model.units=3", "data.n_unique=5"])
    model = models.build_model(cfg)
    clone = models.copy_with_batch(model, cfg, 40)
    assert clone.input_shape == (40, 5)
    for a, b in zip(model.get_weights(), clone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn", "mlp", "conv1d"])
@pytest.mark.parametrize("target", ["value", "sequence"])
def test_every_kind_builds_for_every_framing_that_makes_sense(kind, target):
    if kind == "mlp" and target == "sequence":
        pytest.skip("mlp flattens the window: refused by the config (tested below)")
    stateful = "true" if kind in models.RECURRENT else "false"
    cfg = load_config(overrides=[f"model.kind={kind}", f"model.stateful={stateful}",
                                 f"data.target={target}", "model.units=8"])
    model = models.build_model(cfg)
    assert tuple(model.output_shape) == ((5,) if stateful == "true" else (None,)) + (
        (5, 100) if target == "sequence" else (100,))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.kind=mlp"], "model.stateful: true needs a recurrent model.kind"),
        (["model.kind=conv1d", "model.stateful=false", "data.missing=mask"],
         "data.missing: mask needs a recurrent model.kind"),
        (["model.kind=mlp", "model.stateful=false", "data.target=sequence"],
         "data.target: sequence needs an output per timestep"),
    ],
)
def test_combinations_that_make_no_sense_are_refused(overrides, message):
    from echo_cli.config.loading import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


def test_causal_convolutions_cover_the_window():
    assert models.conv_dilations(1) == [1]
    assert models.conv_dilations(5) == [1, 2, 4]  # receptive field 8 >= 5
    assert models.conv_dilations(25) == [1, 2, 4, 8, 16]  # 32 >= 25


def test_parameters_and_multiply_adds_are_counted_by_hand():
    cfg = load_config(overrides=["data.n_unique=4", "data.window=2", "model.units=3",
                                 "model.stateful=false"])
    # LSTM: kernel 4x12 + recurrent 3x12 + bias 12 = 96; Dense 3x4 + 4 = 16
    # per sample: 2 steps x (48 + 36) + 12 = 180 multiply-adds; the one-hot lookup costs none
    assert models.size(models.build_model(cfg)) == {"parameters": 112,
                                                    "multiply_adds_per_sample": 180}
    mlp = load_config(overrides=["data.n_unique=4", "data.window=2", "model.units=3",
                                 "model.stateful=false", "model.kind=mlp"])
    # hidden: 8x3 + 3 = 27, output: 3x4 + 4 = 16; multiply-adds 24 + 12
    assert models.size(models.build_model(mlp)) == {"parameters": 43,
                                                    "multiply_adds_per_sample": 36}
    gru = load_config(overrides=["data.n_unique=4", "data.window=2", "model.units=3",
                                 "model.stateful=false", "model.kind=gru"])
    # GRU: kernel 4x9 + recurrent 3x9 + two biases 2x9 = 81; 2 x (36 + 27) + 12 multiply-adds
    assert models.size(models.build_model(gru)) == {"parameters": 97,
                                                    "multiply_adds_per_sample": 138}
    conv = load_config(overrides=["data.n_unique=4", "data.window=2", "model.units=3",
                                  "model.stateful=false", "model.kind=conv1d",
                                  "data.target=sequence"])
    # one causal conv (kernel 2x4x3 + 3) at 2 positions, then the Dense at both positions
    assert models.size(models.build_model(conv)) == {"parameters": 27 + 16,
                                                     "multiply_adds_per_sample": 2 * 24 + 2 * 12}
