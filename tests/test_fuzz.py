"""Fuzz: random and malformed configs, --set and --grid values, through loading, validation,
the memory check and the CLI. Each is accepted or refused with one line, never a traceback.

Hypothesis runs derandomized, so CI sees the same cases every time.
"""

import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from echo_cli.cli import app
from echo_cli.config import limits
from echo_cli.config.loading import ConfigError, known_keys, load_config
from echo_cli.sweeps import sweep

FUZZ = settings(max_examples=300, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
runner = CliRunner()

KEYS = known_keys()
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, 3, 5, 25, 100, 2**31, 2**32, 2**63, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["lstm", "gru", "mlp", "conv1d", "tcn", "full", "window", "mask", "pad",
                     "sequence", "value", "csv", "random", "embedding", "jax", "\x1b[31m",
                     "1:30", "1_0", "٣", "1e-3", ".inf", "-.nan", "~", "[1", "{a: 1}"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=20))


def one_line(message: str) -> None:
    assert message and "\n" not in message and len(message) < 1000, message


def nested(items: dict[str, object]) -> dict:
    raw: dict = {}
    for key, value in items.items():
        node = raw
        *sections, last = key.split(".")
        for section in sections:
            child = node.setdefault(section, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[last] = value
    return raw


@FUZZ
@given(st.dictionaries(keys, values, max_size=6))
def test_random_config_files_load_or_are_refused_in_one_line(tmp_path_factory, items):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    try:
        path.write_text(yaml.safe_dump(nested(items), allow_unicode=True))
    except yaml.YAMLError:
        return  # a value PyYAML itself cannot write
    try:
        cfg = load_config(path)
    except ConfigError as err:
        one_line(str(err))
        return
    try:
        limits.check(cfg)
    except limits.LimitError as err:
        one_line(str(err))


@FUZZ
@given(st.text(max_size=200))
def test_random_text_as_a_config_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_bytes(text.encode("utf-8", errors="replace"))
    try:
        load_config(path)
    except ConfigError as err:
        one_line(str(err))


def as_text(value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True
                                                               ).strip().removesuffix("...")


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=40),
                          st.builds(lambda k, v: f"{k}={as_text(v)}", keys, values)),
                max_size=4))
def test_random_set_items_through_the_cli(items):
    args = [arg for item in items for arg in ("--set", item)]
    result = runner.invoke(app, ["check-data", *args, "--rows", "3"])
    assert result.exit_code in (0, 2), (items, result.output, result.exception)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (items, result.stderr)
    assert "Traceback" not in result.output


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=40),
                          st.builds(lambda k, vs: f"{k}={','.join(as_text(v) for v in vs)}",
                                    keys, st.lists(values, min_size=1, max_size=3))),
                max_size=3))
def test_random_grid_items_parse_or_are_refused_in_one_line(items):
    try:
        grid = sweep.parse_grid(items)
    except sweep.SweepError as err:
        one_line(str(err))
        return
    for point in sweep.expand(grid, seeds=1, base_seed=1):
        assert len(point.name.encode()) <= 255 and "/" not in point.name


TAGS = ["!!int", "!!float", "!!bool", "!!str", "!!null", "!!timestamp", "!!binary", "!!set",
        "!!omap", "!!pairs", "!!seq", "!!map", "!!python/object:os.system", "!!python/name:os",
        "!custom", "!!merge"]
tagged = st.builds(lambda tag, body: f"{tag} {body}", st.sampled_from(TAGS), st.one_of(
    st.sampled_from(['"0x10"', '"abc"', '"maybe"', '"1e400"', "[1, 2]", "{a: 1}", '""', "x",
                     '"2026-13-45"', '"@@"', "[[1]]", "~"]),
    st.text(alphabet="0123456789abcxyz.-+[]{}:, \"'", max_size=12)))


@FUZZ
@given(st.sampled_from(KEYS), tagged)
def test_explicit_tags_with_bad_contents_are_one_line_in_files_sets_and_grids(key, value):
    """A tag whose contents it cannot take (!!int "0x10", !!bool "maybe", !!set [1]) is a
    YAML error of one line wherever the value comes from: a file, --set, or --grid."""
    section, _, name = key.rpartition(".")
    text = f"{section}:\n  {name}: {value}\n" if section else f"{name}: {value}\n"
    result = runner.invoke(app, ["check-data", "--set", f"{key}={value}", "--rows", "2"])
    assert result.exit_code in (0, 2), (key, value, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        one_line(result.stderr.strip())
    try:
        sweep.parse_grid([f"{key}={value}"])
    except sweep.SweepError as err:
        one_line(str(err))
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(text)
        try:
            load_config(path)
        except ConfigError as err:
            one_line(str(err))


# ---------------------------------------------------------------------------------------------
# results and compare over a mix of finished, unfinished and damaged run directories

RUN_STATES = st.sampled_from(["finished", "unfinished", "killed-with-lock", "damaged-metrics",
                              "not-json", "edited-config", "empty-dir"])


def _make_run(path, state: str) -> None:
    import json

    from helpers import METRICS, fake_run

    from echo_cli.store import rundir

    if state == "empty-dir":
        path.mkdir()
        return
    fake_run(path, dict(METRICS))
    if state == "unfinished":
        (path / rundir.METRICS).unlink()
    elif state == "killed-with-lock":
        (path / rundir.METRICS).unlink()
        (path / rundir.LOCK).write_text(json.dumps({"pid": 1}) + " " * 64)  # held by nobody
    elif state == "damaged-metrics":
        (path / rundir.METRICS).write_text(json.dumps({**METRICS, "heldout_accuracy": 0.99}))
    elif state == "not-json":
        (path / rundir.METRICS).write_text("{half")
    elif state == "edited-config":
        text = (path / rundir.CONFIG).read_text().replace("lag: 1", "lag: 2")
        (path / rundir.CONFIG).write_text(text)


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(RUN_STATES, min_size=1, max_size=5))
def test_results_and_compare_tabulate_what_finished_and_name_the_rest(tmp_path_factory, states):
    """Every finished run is tabulated and every other one named in one line and skipped; with
    none finished, one error line and exit 2; never a traceback."""
    root = tmp_path_factory.mktemp("mix")
    paths = [root / f"r{i}-{state}" for i, state in enumerate(states)]
    for path, state in zip(paths, states, strict=True):
        _make_run(path, state)
    finished = [p for p, s in zip(paths, states, strict=True) if s == "finished"]
    for command in (["results", *map(str, paths), "--out", str(root / "res"), "--force"],
                    ["compare", *map(str, paths)]):
        result = runner.invoke(app, command, env={"COLUMNS": "200"})
        assert "Traceback" not in result.output, result.output
        if finished:
            assert result.exit_code == 0, (states, result.output)
            assert sum(line.startswith("skipped ")
                       for line in result.stdout.splitlines()) == len(paths) - len(finished)
        else:
            assert result.exit_code == 2, (states, result.output)
            one_line(result.stderr.strip())
