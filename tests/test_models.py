"""Model shapes, one case per framing, and the one-hot front end."""

import numpy as np
import pytest

from echo_cli import models
from echo_cli.config import load_config


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
