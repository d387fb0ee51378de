"""`echo-cli config` (show, keys, schema), and the command line's conventions: --version,
shell completion of CONFIG and RUN, plain words in usage, the order of the commands, and the
hints for an unknown key."""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from helpers import in_empty_dir, invoke, one_line_error, runner
from typer.core import TyperArgument

from echo_cli import models
from echo_cli.cli import app
from echo_cli.cli.completion import complete_config, complete_run, complete_run_or_sweep
from echo_cli.config.keys import json_schema, key_docs
from echo_cli.config.loading import leaf_keys, load_config
from echo_cli.store import rundir

ROOT = Path(__file__).resolve().parent.parent
LAG1 = ROOT / "configs" / "lag1.yaml"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
SCHEMA_FILE = ROOT / "configs" / "echo-cli.schema.json"
SCHEMA_LINE = "# yaml-language-server: $schema=echo-cli.schema.json"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    in_empty_dir(tmp_path, monkeypatch, columns=80)


def commands(group=None, path: tuple[str, ...] = ()):
    """(words, command) for every command and group under the app, subcommands included."""
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from commands(command, (*path, name))


# -------------------------------------------------------------------------------- config show

def test_show_prints_the_config_as_train_would_run_it():
    result = invoke("config", "show", LAG1, "--set", "train.epochs=50")
    assert result.exit_code == 0, result.output
    assert "  epochs: 50\n" in result.stdout and "  window: 5\n" in result.stdout
    Path("shown.yaml").write_text(result.stdout)
    assert load_config("shown.yaml") == load_config(LAG1, overrides=["train.epochs=50"])
    assert "note:" in result.stderr and "note:" not in result.stdout  # stdout stays a config
    assert sorted(os.listdir()) == ["shown.yaml"]  # no runs/, no run directory


@pytest.mark.parametrize("args, fragment", [
    (["--set", "train.epochz=50"], "train.epochz is not a known key; did you mean train.epochs?"),
    (["--set", "data.window=0"], "data.window must be ≥ 1, got 0"),
    (["--set", "model.kind=lstmm"], "model.kind must be one of"),
    (["--set", "train.epochs"], "--set expects KEY=VALUE"),
])
def test_show_refuses_a_bad_config_exactly_as_train_does(args, fragment):
    shown = one_line_error(invoke("config", "show", LAG1, *args))
    trained = one_line_error(invoke("train", LAG1, *args))
    assert shown == trained and fragment in shown
    assert not Path("runs").exists()


def test_show_of_a_missing_file_is_one_line():
    assert "config file nope.yaml does not exist" in one_line_error(invoke("config", "show",
                                                                           "nope.yaml"))


# -------------------------------------------------------------------------------- config keys

def test_keys_lists_every_key_with_type_default_and_meaning_at_80_columns():
    result = invoke("config", "keys")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert {d.key for d in key_docs()} == set(leaf_keys())
    flat = " ".join(result.stdout.split())  # the text with its wrapping undone
    for doc in key_docs():
        assert any(line.startswith(f"{doc.key} (") for line in lines), doc.key
        assert doc.description and " ".join(doc.description.split()) in flat, doc.key
        assert f"{doc.key} ({doc.kind}; default {doc.default})" in flat
    assert "train.epochs (integer ≥ 1; default 2000)" in flat
    assert (f"model.kind (one of {', '.join(models.names())}; default lstm)") in flat
    assert ("train.batch_size (integer ≥ 1; default 5 (copy, adding: 32; selective_copy, "
            "induction: 64))") in flat
    assert ("train.clipnorm (number > 0, or null; default null (copy, adding, selective_copy, "
            "induction: 1.0))") in flat
    assert "…" not in result.stdout


# -------------------------------------------------------------------------------- config schema

def test_the_checked_in_schema_is_what_config_schema_prints():
    result = invoke("config", "schema")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json_schema()
    assert SCHEMA_FILE.read_text() == result.stdout, (
        "configs/echo-cli.schema.json is out of date with the config schema: run make schema")


def test_the_schema_describes_every_key():
    schema = json_schema()
    assert schema["additionalProperties"] is False

    def definitions(prop: dict) -> list[dict]:  # a section, or each task's data section
        refs = [prop] if "$ref" in prop else prop["oneOf"]
        return [schema["$defs"][r["$ref"].rsplit("/", 1)[-1]] for r in refs]

    for key in leaf_keys():
        *sections, name = key.split(".")
        nodes = [schema]
        for section in sections:
            nodes = [d for node in nodes for d in definitions(node["properties"][section])]
        holding = [node for node in nodes if name in node["properties"]]
        assert holding, key
        for node in holding:
            assert node["additionalProperties"] is False
            assert node["properties"][name]["description"], key
    assert schema["properties"]["train"]["description"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_names_the_schema_on_its_first_line(path):
    assert path.read_text().splitlines()[0] == SCHEMA_LINE, (
        f"{path.name} must start with the line {SCHEMA_LINE!r}, so editors check its keys")


def test_editors_accept_every_config_and_flag_a_typo():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    for path in CONFIGS:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path.name
    typo = list(validator.iter_errors({"data": {"windw": 3}}))
    assert typo and "windw" in typo[0].message


@pytest.mark.parametrize("args", [["config", "show", LAG1], ["config", "keys"],
                                  ["config", "schema"]], ids=lambda a: " ".join(a[:2]))
def test_config_commands_load_no_keras_and_write_nothing(args, tmp_path):
    code = ("import sys\nfrom echo_cli.cli import app\nfrom echo_cli.cli.common import invoke\n"
            "code = invoke(app, sys.argv[1:])\n"
            "bad = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\n"
            "assert not bad, bad\nsys.exit(code)\n")
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert list(tmp_path.iterdir()) == []  # no runs/, no run directory, no file


# -------------------------------------------------------------------------------- --version

def test_version_prints_the_installed_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"echo-cli {version('echo-cli')}\n"


# -------------------------------------------------------------------------------- completion

@pytest.fixture
def files():
    """Configs here and in configs/, a finished run, an unfinished one, and a sweep."""
    Path("configs/data").mkdir(parents=True)
    for name in ("mine.yaml", "notes.txt", ".hidden.yaml", "configs/lag1.yaml",
                 "configs/stream.yaml", "configs/echo-cli.schema.json"):
        Path(name).write_text("")
    for run in ("runs/lag1-1", "runs/sweep-s/runs/lag=1,seed=1"):
        Path(run).mkdir(parents=True)
        (Path(run) / rundir.METRICS).write_text("{}")
        (Path(run) / rundir.CONFIG).write_text("")
    Path("runs/live-2").mkdir()  # still training: no metrics yet


def test_config_completion_offers_yaml_files_here_and_in_configs(files):
    assert complete_config("") == ["mine.yaml", "configs/lag1.yaml", "configs/stream.yaml"]
    assert complete_config("conf") == ["configs/lag1.yaml", "configs/stream.yaml"]
    assert complete_config("configs/s") == ["configs/stream.yaml"]
    assert complete_config("nothing") == []


def test_run_completion_offers_finished_runs_and_sweeps(files):
    assert complete_run("") == ["runs/lag1-1"]
    assert complete_run("runs/sweep-s/runs/") == ["runs/sweep-s/runs/lag=1,seed=1"]
    assert complete_run_or_sweep("r") == ["runs/lag1-1", "runs/sweep-s"]


def test_every_config_and_run_argument_completes(files):
    wanted = {"train": "CONFIG", "check-data": "CONFIG", "sweep": "CONFIG",
              "config show": "CONFIG", "bench engines": "CONFIG", "bench vocab": "CONFIG",
              "predict": "RUN", "stream": "RUN", "inspect": "RUN", "results": "RUN",
              "compare": "RUN", "memory-table": "RUN"}
    found = {}
    for words, command in commands():
        for param in command.params:
            if isinstance(param, TyperArgument) and param.metavar in ("CONFIG", "RUN"):
                found[" ".join(words)] = param.metavar
                offered = [i.value for i in param.shell_complete(typer.Context(command), "")]
                assert ("runs/lag1-1" if param.metavar == "RUN" else "configs/lag1.yaml") \
                    in offered, words
    assert wanted.items() <= found.items(), set(wanted.items()) - set(found.items())


@pytest.mark.parametrize("line, expected", [
    ("echo-cli train con", ["configs/lag1.yaml", "configs/stream.yaml"]),
    ("echo-cli config show ", ["mine.yaml", "configs/lag1.yaml", "configs/stream.yaml"]),
    ("echo-cli predict ", ["runs/lag1-1"]),
    ("echo-cli --vers", ["--version"]),
])
def test_bash_completion_end_to_end(files, line, expected):
    words = line.split()
    env = {**os.environ, "_ECHO_CLI_COMPLETE": "complete_bash", "COMP_WORDS": line,
           "COMP_CWORD": str(len(words) - (0 if line.endswith(" ") else 1))}
    out = subprocess.run([sys.executable, "-m", "echo_cli"], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == expected


def test_completion_can_be_installed():
    result = invoke("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


# -------------------------------------------------------------------------------- help

PYTHON_WORDS = re.compile(r"<list\[|range>|<int>|<float>|<str>|<path>|<text>|\{|INTEGER|TEXT|"
                          r"FLOAT|BOOLEAN|PATH\b|<bool>")


@pytest.mark.parametrize("words", [(), *(w for w, _ in commands())], ids=" ".join)
def test_help_shows_plain_words_not_python_types(words):
    result = invoke(*words, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: echo-cli {' '.join(words)}".rstrip())
    found = PYTHON_WORDS.findall(result.stdout)
    assert not found, f"`echo-cli {' '.join(words)} --help` shows {found}"


def command_list(text: str) -> list[str]:
    return text.split("\nCommands:\n", 1)[1].strip("\n").splitlines()


def test_commands_are_listed_in_the_order_a_learner_meets_them():
    result = invoke("--help")
    names = [line.split()[0] for line in command_list(result.stdout) if line[2:3] != " "]
    assert names[:11] == ["train", "check-data", "predict", "stream", "inspect", "results",
                          "compare", "sweep", "memory-table", "bench", "config"]


@pytest.mark.parametrize("words", [(), ("bench",), ("config",)], ids=" ".join)
def test_command_summaries_are_whole(words):
    rows = command_list(invoke(*words, "--help").stdout)
    assert rows and not [row for row in rows if "..." in row]
    assert all(len(row) <= 80 for row in rows)


def test_a_missing_argument_is_named_in_plain_words():
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 2 and "Missing argument 'RUN'" in result.output
    # train takes CONFIG, or --resume RUN instead
    one_line_error(invoke("train"), "train needs a CONFIG (a YAML file or a built-in name "
                                    "such as lag1), or --resume RUN")


# -------------------------------------------------------------------------------- unknown keys

def test_an_unknown_key_points_to_config_keys():
    line = one_line_error(invoke("check-data", "--set", "zzqq=1"))
    assert line.endswith("zzqq is not a known key; see `echo-cli config keys` for every key")
    line = one_line_error(invoke("sweep", LAG1, "--grid", "zzqq=1,2"))
    assert line.endswith("zzqq is not a known key; see `echo-cli config keys` for every key")


@pytest.mark.parametrize("key, hint", [("train.epochz", "did you mean train.epochs?"),
                                       ("data.windw", "did you mean data.window?"),
                                       ("model.unit", "did you mean model.units?")])
def test_grid_suggests_the_key_as_set_does(key, hint):
    by_set = one_line_error(invoke("check-data", "--set", f"{key}=1"))
    by_grid = one_line_error(invoke("sweep", LAG1, "--grid", f"{key}=1,2"))
    assert by_set.endswith(f"{key} is not a known key; {hint}")
    assert by_grid == f"error: --grid {key} is not a known key; {hint}"
    assert not Path("runs").exists()
