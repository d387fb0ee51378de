"""Habits from Hydra and LightningCLI: bare KEY=VALUE overrides after the config,
`train --print-config`, -q and -v, and command.txt in every run directory."""

import json

import pytest
import yaml
from helpers import CONFIGS, TINY, TINY_RUN, invoke, one_line_error, sets

import echo_cli.notebook as ec
from echo_cli.config.loading import load_config, to_yaml
from echo_cli.store import rundir


def test_config_show_takes_bare_overrides_as_set_does():
    bare = invoke("config", "show", CONFIGS / "lag1.yaml", "train.epochs=50", "data.lag=2")
    flagged = invoke("config", "show", CONFIGS / "lag1.yaml", "--set", "train.epochs=50",
                     "--set", "data.lag=2")
    assert bare.exit_code == flagged.exit_code == 0, bare.output
    assert bare.stdout == flagged.stdout
    assert yaml.safe_load(bare.stdout)["train"]["epochs"] == 50


def test_bare_overrides_apply_after_the_set_ones():
    result = invoke("config", "show", CONFIGS / "lag1.yaml", "train.epochs=9", "--set",
                    "train.epochs=3")
    assert yaml.safe_load(result.stdout)["train"]["epochs"] == 9


@pytest.mark.parametrize("command", [["train"], ["config", "show"], ["sweep"]])
def test_a_second_config_or_a_typo_says_to_give_key_value(command):
    result = invoke(*command, CONFIGS / "lag1.yaml", "configs/other.yaml")
    one_line_error(result, "unexpected argument 'configs/other.yaml'",
                   "overrides as KEY=VALUE, e.g. train.epochs=50 (or --set train.epochs=50)")


def test_print_config_prints_the_resolved_config_and_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "lag1", "train.epochs=7", "--set", "data.lag=2", "--print-config")
    assert result.exit_code == 0, result.output
    want = load_config(CONFIGS / "lag1.yaml", overrides=["data.lag=2", "train.epochs=7"])
    assert result.stdout == to_yaml(want)
    assert not (tmp_path / "runs").exists()


def test_quiet_prints_only_the_result_lines_and_verbose_the_config(tmp_path):
    quiet = invoke("train", CONFIGS / "lag1.yaml", *sets(TINY_RUN), "--out", tmp_path / "q",
                   "-q")
    assert quiet.exit_code == 0, quiet.output
    lines = [line for line in quiet.stdout.splitlines() if line.strip()]
    metrics = json.loads((tmp_path / "q" / rundir.METRICS).read_text())
    assert lines[0].startswith(f"held-out accuracy {metrics['heldout_accuracy']:.4f}")
    text = " ".join(quiet.stdout.split())
    assert f"saved {tmp_path / 'q'}/" in text
    for chatter in ("echo-cli train", "per epoch", "weight updates", "held-out examples",
                    "n_unique: 8"):
        assert chatter not in text, chatter
    usual = invoke("train", CONFIGS / "lag1.yaml", *sets(TINY_RUN), "--out", tmp_path / "u")
    assert "echo-cli train" in usual.stdout and "n_unique: 8" not in usual.stdout
    verbose = invoke("train", CONFIGS / "lag1.yaml", *sets(TINY_RUN), "--out", tmp_path / "v",
                     "-v")
    assert "n_unique: 8" in verbose.stdout and "  units: 4" in verbose.stdout


def test_every_run_directory_keeps_the_command_that_made_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", CONFIGS / "lag1.yaml", "model.units=4", *sets(TINY_RUN),
                    "--out", "cli")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "cli" / rundir.COMMAND).read_text().splitlines()
    # the command written out whole: every override as --set, --out as it was claimed
    assert lines[0] == "command: " + " ".join([
        "echo-cli", "train", str(CONFIGS / "lag1.yaml"),
        *(a for item in [*TINY_RUN, "model.units=4"] for a in ("--set", item)), "--out", "cli"])
    assert lines[1] == f"config: {CONFIGS / 'lag1.yaml'}"
    assert lines[2] == "overrides: " + " ".join([*TINY_RUN, "model.units=4"])
    assert lines[3] == f"cwd: {tmp_path}"

    run = ec.train(ec.load(None, TINY_RUN), out=tmp_path / "nb", progress=False)
    assert (run.path / rundir.COMMAND).read_text().startswith(
        "command: echo_cli.notebook.train()")

    swept = invoke("sweep", CONFIGS / "lag1.yaml", "--grid", "model.units=3,4",
                   *sets([t for t in TINY if not t.startswith("model.units")]), "--workers", "1",
                   "--out", "sw")
    assert swept.exit_code == 0, swept.output
    for run_dir in sorted((tmp_path / "sw" / "runs").iterdir()):
        text = (run_dir / rundir.COMMAND).read_text()
        assert text.startswith("command: echo-cli sweep ") and f"cwd: {tmp_path}" in text
