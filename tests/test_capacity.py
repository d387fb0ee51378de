"""Memory capacity against two oracles echo-cli did not write: the linear theory (MC ≤ N,
reached by a linear network whose controllability matrix has full rank) and reservoirpy's own
`memory_capacity`, on the same reservoir, input series and split."""

import numpy as np
import pytest
from helpers import CONFIGS, invoke, one_line_error, sets

from echo_cli.analysis.capacity import linear_states, memory_capacity, model_states, series
from echo_cli.config.loading import load_config
from echo_cli.training.loop import build


def test_an_orthogonal_linear_network_of_50_nearly_reaches_its_bound():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    mc = memory_capacity(linear_states(0.95 * q, rng.standard_normal((50, 1))), k_max=100,
                         scale=0.8, seed=2)
    assert mc.bound == 50 and 45 <= mc.total <= 51  # r² on held-out data: a little noise
    assert mc.r2[0] > 0.99 and mc.r2[-1] < 0.05


def _reservoirpy():
    pytest.importorskip("reservoirpy")

    from reservoirpy.nodes import Reservoir, Ridge
    from reservoirpy.observables import memory_capacity as rpy_capacity

    return Reservoir, Ridge, rpy_capacity


def test_the_estimator_is_reservoirpys_on_its_documented_example():
    """reservoirpy's docstring: Reservoir(100, sr=1, seed=1) >> Ridge(ridge=1e-4), k_max=50:
    18.78. Our estimator, on the states reservoirpy's own reservoir computes for the same
    series, gives the same number to 1e-6."""
    reservoir, ridge, rpy_capacity = _reservoirpy()
    theirs = rpy_capacity(reservoir(100, sr=1, seed=1) >> ridge(ridge=1e-4), k_max=50, seed=1)
    assert theirs == pytest.approx(18.784, abs=5e-4)
    res = reservoir(100, sr=1, seed=1)
    ours = memory_capacity(lambda u: res.run(u), k_max=50, u=series(50, scale=0.8, seed=1))
    assert abs(ours.total - theirs) < 1e-6
    assert ours.bound == 100 and len(ours.r2) == 50


def test_an_esn_model_with_reservoirpys_weights_measures_what_reservoirpy_does():
    """End to end: our ESN layer, given reservoirpy's W, W_in and bias, fed the uniform input
    through its input layer as the adding problem's value, then our estimator: the same MC
    (to float32 weights' precision)."""
    reservoir, ridge, rpy_capacity = _reservoirpy()
    theirs = rpy_capacity(reservoir(100, sr=1, seed=1) >> ridge(ridge=1e-4), k_max=50, seed=1)
    res = reservoir(100, sr=1, seed=1)
    res.initialize(np.zeros((1, 1)))
    cfg = load_config(overrides=["data.task=adding", "data.length=10", "model.kind=esn",
                                 "model.units=100", "model.leak=1.0"])
    model = build(cfg)
    layer = model.get_layer("esn")
    w_in = np.zeros((2, 100), np.float32)
    w_in[0] = res.Win.toarray()[:, 0]  # the value feature; the marker's stays 0
    layer.input_kernel.assign(w_in)
    layer.reservoir_kernel.assign(res.W.toarray().T.astype(np.float32))  # x @ W here
    layer.reservoir_bias.assign(np.zeros(100, np.float32))
    ours = memory_capacity(model_states(model, cfg.signature), k_max=50,
                           u=series(50, scale=0.8, seed=1))
    assert abs(ours.total - theirs) < 1e-3


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cap") / "gru"
    result = invoke("train", CONFIGS / "copy_memory.yaml", *sets([
        "model.kind=gru", "model.units=8", "data.delay=5", "train.epochs=20",
        "train.target_accuracy=null", "eval.sequences=20"]), "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_capacity_prints_mc_beside_its_bound_and_writes_the_curve(gru_run, tmp_path):
    result = invoke("capacity", gru_run, "--out", tmp_path / "c", "--scale", "0.5")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "of the bound N = 8" in text and "U(-0.5, 0.5)" in text
    rows = (tmp_path / "c" / "capacity.csv").read_text().splitlines()
    assert rows[0].startswith("k,r2") and len(rows) == 1 + 16  # k = 1 .. 2N
    again = invoke("capacity", gru_run, "--out", tmp_path / "c")
    one_line_error(again, "already has capacity.json, capacity.csv and capacity.png; give --force")


def test_capacity_refuses_a_model_with_no_state(tmp_path):
    out = tmp_path / "mlp"
    result = invoke("train", CONFIGS / "lag1.yaml", *sets([
        "model.kind=mlp", "model.stateful=false", "model.units=4", "train.epochs=2",
        "eval.sequences=4", "data.n_unique=6"]), "--out", out)
    assert result.exit_code == 0, result.output
    one_line_error(invoke("capacity", out), "capacity reads a recurrent state")
