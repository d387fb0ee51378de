"""The config schema: defaults, every shipped file, overrides and one-line errors."""

from pathlib import Path

import pytest

from echo_cli.config.loading import Config, ConfigError, load_config, to_yaml

CONFIGS = sorted(Path(__file__).resolve().parent.parent.joinpath("configs").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_tutorials_echo_lag():
    cfg = load_config()
    assert cfg.name == "lag1" and cfg.seed == 1
    assert (cfg.data.n_unique, cfg.data.length, cfg.data.lag, cfg.data.window) == (100, 25, 1, 5)
    assert (cfg.model.units, cfg.model.stateful) == (50, True)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.learning_rate) == (2000, 5, 0.001)
    assert cfg.eval.sequences == 1000
    assert (cfg.data.missing, cfg.data.context, cfg.data.target) == ("drop", "window", "value")


def test_there_are_configs():
    assert {"lag1.yaml", "echo_current.yaml", "lag_no_context.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_names_itself(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.eval.sequences >= 1000  # held-out bar: at least 1,000 fresh sequences


def test_file_lists_only_what_differs(tmp_path):
    cfg = load_config(write(tmp_path, "train:\n  epochs: 7\n"))
    assert cfg.train.epochs == 7 and cfg.train.batch_size == 5


def test_overrides_beat_the_file(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 7\n")
    cfg = load_config(path, overrides=["train.epochs=50", "model.units=20", "model.stateful=false"])
    assert (cfg.train.epochs, cfg.model.units, cfg.model.stateful) == (50, 20, False)


def test_scientific_notation_is_a_float(tmp_path):
    cfg = load_config(write(tmp_path, "train:\n  learning_rate: 1e-3\n"))
    assert cfg.train.learning_rate == pytest.approx(0.001)
    assert load_config(overrides=["train.learning_rate=5e-3"]).train.learning_rate == 0.005


def test_resolved_yaml_reproduces_the_config(tmp_path):
    cfg = load_config(overrides=["data.lag=3", "data.window=7", "seed=9"])
    again = load_config(write(tmp_path, to_yaml(cfg)))
    assert again == cfg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data:\n  windw: 5\n", "data.windw is not a known key; did you mean data.window?"),
        ("trian:\n  epochs: 5\n", "trian is not a known key; did you mean train?"),
        ("data:\n  window: five\n", "data.window must be an integer, got 'five'"),
        ("model:\n  stateful: 3\n", "model.stateful must be true or false, got 3"),
        ("data:\n  window: 0\n", "data.window must be ≥ 1, got 0"),
        ("data:\n  lag: -1\n", "data.lag must be ≥ 0, got -1"),
        ("data:\n  window: 30\n", "data.window must be ≤ data.length (25), got 30"),
        ("train:\n  learning_rate: 0\n", "train.learning_rate must be > 0.0, got 0"),
        ("data:\n  missing: zero\n", "data.missing must be one of 'drop', 'pad' or 'mask'"),
        ("data: 5\n", "data must be a mapping of keys, got 5"),
    ],
)
def test_bad_values_name_key_got_and_expected(tmp_path, text, expected):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_batch_larger_than_the_samples_lists_batch_sizes_that_work():
    with pytest.raises(ConfigError, match=r"train.batch_size must be ≤ 21.*got 30.*1, 3, 7, 21"):
        load_config(overrides=["train.batch_size=30"])


def test_batch_that_does_not_divide_trims_the_oldest_rows_and_says_so():
    cfg = load_config(overrides=["train.batch_size=4"])  # 21 samples -> 20
    assert any("oldest 1 is trimmed" in note for note in cfg.warnings())


def test_full_context_needs_pad_or_mask():
    with pytest.raises(ConfigError, match="data.context: full needs data.missing: pad or mask"):
        load_config(overrides=["data.context=full"])


def test_lag_outside_the_window_warns_of_chance():
    notes = load_config(overrides=["data.window=1", "train.batch_size=6"]).warnings()
    assert any("beginner's mistake" in n and "0.01" in n for n in notes)
    assert not load_config().warnings()[1:]  # lag1 only notes its trimmed row


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.epoch=5"], "train.epoch is not a known key; did you mean train.epochs?"),
        (["train.epochs=many"], "train.epochs must be an integer, got 'many'"),
        (["train.epochs"], "--set expects KEY=VALUE"),
        (["seed.x=1"], "seed must be an integer, got {'x': 1}"),
        (["data.window=[1"], "is not a valid YAML value"),
    ],
)
def test_bad_overrides(overrides, expected):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=overrides)
    assert expected in str(err.value)


def test_override_into_a_value_from_the_file(tmp_path):
    with pytest.raises(ConfigError, match="seed is a value, not a section"):
        load_config(write(tmp_path, "seed: 3\n"), overrides=["seed.x=1"])


def test_missing_file_directory_bad_yaml_and_list(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="is not valid YAML at line 2, column 1"):
        load_config(write(tmp_path, "data: [1, 2\n"))
    with pytest.raises(ConfigError, match="must hold a YAML mapping.*got a list"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_chance_is_one_over_n_unique():
    assert Config().chance_accuracy == 0.01
