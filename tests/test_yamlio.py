"""YAML as echo-cli reads it: plain numbers, no duplicate keys, no aliases, bounded size."""

import pytest

from echo_cli.config.loading import ConfigError, load_config
from echo_cli.config.yamlio import MAX_FILE_BYTES, parse_yaml


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 0.001), ("12e3", 12000.0), ("-1.5", -1.5), (".5", 0.5), ("3", 3), ("+4", 4),
     ("010", 10), ("1:30", "1:30"), ("1_000", "1_000"), ("0x1F", "0x1F"), ("true", True),
     ("null", None), ("1.", 1.0)],
)
def test_numbers_are_what_a_user_means(text, value):
    assert parse_yaml(text) == value and type(parse_yaml(text)) is type(value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=1:30", "train.epochs must be an integer, got '1:30'"),
        ("train.epochs=1_0", "train.epochs must be an integer, got '1_0'"),
        ("train.learning_rate=.inf", "train.learning_rate must be a finite number, got inf"),
        ("train.learning_rate=.nan", "train.learning_rate must be a finite number, got nan"),
        ("seed=4294967296", "seed must be ≤ 4294967295, got 4294967296"),
        ("name=_a", "name must start with a letter or digit"),
        ("name=..", "name must start with a letter or digit"),
        ("name=-x", "name must start with a letter or digit and hold only letters, digits, '_'"),
    ],
)
def test_surprising_values_are_refused_with_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert message in str(err.value) and "\n" not in str(err.value)


def write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_a_key_given_twice_is_an_error_not_the_last_one(tmp_path):
    with pytest.raises(ConfigError, match="line 3, column 3: the key 'epochs' appears twice"):
        load_config(write(tmp_path, "train:\n  epochs: 5\n  epochs: 7\n"))


def test_aliases_are_refused_so_a_file_cannot_explode(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh",
                                                                     strict=True))
    with pytest.raises(ConfigError, match="aliases .* are not allowed in a config"):
        load_config(write(tmp_path, bomb + "description: *h\n"))


def test_a_huge_file_or_description_is_refused_without_reading_it_all(tmp_path):
    with pytest.raises(ConfigError, match="is 2.0 MiB; a config is at most 1 MiB"):
        load_config(write(tmp_path, "description: " + "x" * (2 * MAX_FILE_BYTES) + "\n"))
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "description: " + "x" * 5000 + "\n"))
    assert "description must be at most 2000 characters" in str(err.value)
    assert len(str(err.value)) < 300  # the value itself is cut, never printed whole


def test_terminal_escapes_in_strings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"description holds a control character \('\\x1b'"):
        load_config(write(tmp_path, 'description: "red \\e[31m text"\n'))


def test_a_long_set_value_is_refused_and_never_echoed_whole():
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["description=" + "y" * 20_000])
    assert "is 20,012 characters long" in str(err.value) and len(str(err.value)) < 300


def test_a_device_or_fifo_is_not_read_forever(tmp_path):
    import os

    with pytest.raises(ConfigError, match="/dev/zero is not a regular file"):
        load_config("/dev/zero")
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="pipe.yaml is not a regular file"):
        load_config(fifo)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train:\n  epochs: " + "9" * 5000 + "\n", "an integer of 5,000 digits is too long"),
        ("description: " + "[" * 5000 + "\n", "nested too deeply"),
        ("model:\n  stateful: yes\n", "model.stateful must be true or false, got 'yes'"),
    ],
)
def test_long_numbers_deep_nesting_and_yaml_11_booleans_are_one_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert len(str(err.value)) < 400


def test_the_same_through_set():
    for item, message in (("train.epochs=" + "9" * 5000, "digits is too long"),
                          ("description=" + "[" * 3000, "nested too deeply")):
        with pytest.raises(ConfigError) as err:
            load_config(overrides=[item])
        assert message in str(err.value) and len(str(err.value)) < 400
