"""The fast path's semantics: which backend `auto` picks, the compile cache changing nothing,
and the process ending cleanly. Never timings: speed is measured by `make bench`."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from echo_cli.training import backends

ROOT = Path(__file__).resolve().parents[1]
JAX = backends.jax_installed()
needs_jax = pytest.mark.skipif(not JAX, reason="JAX is not installed")


@pytest.fixture
def fresh(monkeypatch):
    """choose() as in a new process: no KERAS_BACKEND, no Keras loaded yet."""
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    return monkeypatch


@pytest.mark.parametrize("installed, engine, expected", [
    (True, "fast", "jax"),
    (True, "tutorial", "tensorflow"),
    (False, "fast", "tensorflow"),
    (False, "tutorial", "tensorflow"),
])
def test_auto_picks_the_fastest_installed_backend_right_for_the_engine(
        fresh, installed, engine, expected):
    fresh.setattr(backends, "jax_installed", lambda: installed)
    name, why = backends.choose("auto", engine=engine)
    assert name == expected
    assert why.startswith("auto: ")
    if engine == "tutorial":
        assert "tutorial" in why
    elif not installed:
        assert "JAX is not installed" in why


def test_an_explicit_backend_or_keras_backend_wins_over_auto(fresh):
    fresh.setattr(backends, "jax_installed", lambda: True)
    assert backends.choose("tensorflow", engine="fast") == ("tensorflow", "train.backend")
    fresh.setenv("KERAS_BACKEND", "tensorflow")
    assert backends.choose("auto", engine="fast") == ("tensorflow", "auto: $KERAS_BACKEND")
    fresh.setenv("KERAS_BACKEND", "theano")
    with pytest.raises(backends.BackendError, match="KERAS_BACKEND must be one of"):
        backends.choose("auto", engine="fast")


def test_jax_asked_for_but_missing_says_how_to_install_it(fresh):
    fresh.setattr(backends, "jax_installed", lambda: False)
    with pytest.raises(backends.BackendError, match="make setup EXTRAS=dev,jax"):
        backends.choose("jax", engine="fast")


def test_the_compile_cache_lives_in_the_users_cache_and_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(backends.CACHE_SWITCH, raising=False)
    assert backends.cache_dir() == tmp_path / "echo-cli" / "jax"
    for off in ("0", "off", "false", "no"):
        monkeypatch.setenv(backends.CACHE_SWITCH, off)
        assert backends.cache_dir() is None


def train_child(out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, dict]:
    """`echo-cli train` as a user runs it, with KERAS_BACKEND unset: (stdout, metrics)."""
    child_env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    child_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "echo_cli", "train", "configs/lag1.yaml", "--out", str(out),
         "--set", "data.n_unique=10", "--set", "train.epochs=20", "--set", "eval.sequences=8",
         *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=child_env)
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_auto_in_a_new_process_runs_jax_for_fast_and_tensorflow_for_the_tutorial(tmp_path):
    stdout, metrics = train_child(tmp_path / "fast")
    expected = "jax" if JAX else "tensorflow"
    assert metrics["backend"] == expected
    assert f"backend: {expected}" in (tmp_path / "fast/config.yaml").read_text()
    assert f"backend={expected} (auto: " in " ".join(stdout.split())
    assert set(metrics["phase_seconds"]) == {"import", "build", "compile", "train", "evaluate",
                                             "save"}

    stdout, metrics = train_child(tmp_path / "tutorial", "--engine", "tutorial",
                                  "--set", "model.stateful=false")
    assert metrics["backend"] == "tensorflow"
    assert "backend=tensorflow (auto: the tutorial engine" in " ".join(stdout.split())


@needs_jax
@pytest.mark.slow
def test_the_compile_cache_changes_no_number(tmp_path):
    """Off, on while it fills, and on once it is full: the same run, the same numbers."""
    cache = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = {"off": train_child(tmp_path / "off", env={**cache, backends.CACHE_SWITCH: "0"})}
    assert not (tmp_path / "cache/echo-cli").exists()
    runs["filling"] = train_child(tmp_path / "filling", env=cache)
    def entries() -> dict[str, int]:  # each compiled program's file and when it was written
        return {p.name: p.stat().st_mtime_ns
                for p in (tmp_path / "cache/echo-cli/jax").iterdir() if p.name.endswith("-cache")}

    filled = entries()
    assert filled
    runs["full"] = train_child(tmp_path / "full", env=cache)
    assert entries() == filled  # read, not compiled and written again: the cache was hit
    histories = {name: (tmp_path / name / "history.csv").read_text() for name in runs}
    assert histories["off"] == histories["filling"] == histories["full"]
    keys = ("heldout_correct", "final_train_loss", "backend")
    assert len({tuple(metrics[k] for k in keys) for _, metrics in runs.values()}) == 1


LEAN_IMPORT = """
import importlib.util, sys
from echo_cli.training import backends, startup
startup.lean = {lean}
backends.import_keras("tensorflow")
print(*("pandas" in sys.modules, "matplotlib.pyplot" in sys.modules, "sklearn" in sys.modules))
import pandas, matplotlib.pyplot  # after Keras's import they import as usual
print(pandas.__name__, matplotlib.pyplot.__name__)
"""


@pytest.mark.parametrize("lean", [True, False])
def test_the_command_line_keeps_what_it_never_uses_out_of_keras_import(lean):
    # Keras imports pandas, matplotlib.pyplot and scikit-learn (about 1.5 s) when installed;
    # the command line (lean) leaves them out of its import, a notebook does not
    done = subprocess.run([sys.executable, "-c", LEAN_IMPORT.format(lean=lean)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    during, after = done.stdout.splitlines()[:2]
    sklearn = importlib.util.find_spec("sklearn") is not None  # the mlflow extra brings it
    assert during == f"{not lean} {not lean} {not lean and sklearn}"
    assert after == "pandas matplotlib.pyplot"


def test_growth_is_the_power_of_the_length_over_the_longest_lengths():
    from echo_cli.analysis import scaling

    rows = [{"kind": "lstm", "backend": "jax", "length": n, "seconds_per_update": 0.05 + 2e-3 * n}
            for n in (25, 100, 400, 1000)]  # a fixed cost, then linear in the length
    rows += [{"kind": "tcn", "backend": "jax", "length": n, "seconds_per_update": 1e-6 * n ** 2}
             for n in (100, 400)]
    rows.append({"kind": "gru", "backend": "jax", "length": 25, "error": "out of memory"})
    slopes = scaling.growth(rows)
    assert set(slopes) == {"lstm / jax", "tcn / jax"}  # one length left is no slope
    assert slopes["tcn / jax"] == pytest.approx(2.0)
    # the fixed cost flattens the shortest lengths, which the fit leaves out
    assert 0.85 < slopes["lstm / jax"] < 1.0
