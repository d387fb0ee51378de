"""echo-cli from a wheel, not from the clone: the configs come with the package.

The slow test builds a wheel with `pip wheel --no-deps` from a copy of the sources, installs
it into a fresh virtual environment that gets its dependencies (TensorFlow, Keras, JAX...) from
this one's site-packages through a .pth file, never echo_cli itself, and runs echo-cli from a
folder outside the repository. The fast test checks that pyproject.toml lists every package.
"""

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from helpers import invoke, one_line_error

from echo_cli.config import builtin
from echo_cli.config.loading import load_config
from echo_cli.config.schema import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))


def test_pyproject_lists_every_package_and_ships_the_configs():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "echo_cli").rglob("__init__.py")}
    assert set(setuptools["packages"]) == folders | {"echo_cli.configs"}
    assert setuptools["package-dir"] == {"echo_cli.configs": "configs"}
    assert builtin.names() == CONFIGS
    assert builtin.folder().resolve() == (ROOT / "configs").resolve()  # the editable install


# ---------------------------------------------------------------------------------------------
# the built-in configs, from this (editable) install

def test_a_built_in_config_is_found_by_name_when_no_file_has_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    by_name = load_config("lag1", overrides=["train.epochs=5"])
    assert by_name == load_config(ROOT / "configs" / "lag1.yaml", overrides=["train.epochs=5"])
    assert load_config("lag1.yaml") == load_config(ROOT / "configs" / "lag1.yaml")
    Path("lag1").write_text("name: mine\n")  # a file of that name wins
    assert load_config("lag1").name == "mine"


def test_a_name_that_is_neither_a_file_nor_built_in_is_one_line_listing_the_names(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("train", "lagg1"), "config file lagg1 does not exist",
                   "a built-in name: adding, copy_memory")
    with pytest.raises(ConfigError, match="no built-in config is named nope; the built-in"):
        builtin.path("nope")
    with pytest.raises(ConfigError):
        builtin.path("../pyproject")


def test_configs_lists_each_built_in_config_with_its_description():
    result = invoke("configs")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == CONFIGS
    assert "lag1  " in result.stdout and "echo X(t-1) from a window of the last 5" in result.stdout


def test_init_copies_the_configs_and_never_replaces_a_file_without_force(tmp_path):
    out = tmp_path / "mine"
    assert invoke("init", out).exit_code == 0
    assert sorted(p.stem for p in out.glob("*.yaml")) == CONFIGS
    assert (out / "data" / "dice.csv").is_file() and (out / "echo-cli.schema.json").is_file()
    (out / "lag1.yaml").write_text("name: edited\n")
    one_line_error(invoke("init", out), "already holds", "give --force")
    assert (out / "lag1.yaml").read_text() == "name: edited\n"
    assert invoke("init", out, "--force").exit_code == 0
    assert (out / "lag1.yaml").read_text() == (ROOT / "configs" / "lag1.yaml").read_text()
    (tmp_path / "file").write_text("")
    one_line_error(invoke("init", tmp_path / "file"), "is a file; give a folder")


# ---------------------------------------------------------------------------------------------
# the wheel, in a fresh virtual environment

def _run(args: list, *, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the fresh venv's bin folder, an empty folder outside the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy, so the build leaves no build/ or egg-info in the clone
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("echo_cli", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--wheel-dir", tmp / "dist", source], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("echo_cli-*.whl")
    shipped = zipfile.ZipFile(wheel).namelist()
    assert {f"echo_cli/configs/{name}.yaml" for name in CONFIGS} <= set(shipped)
    assert {"echo_cli/configs/data/dice.csv", "echo_cli/configs/echo-cli.schema.json"} <= set(
        shipped)

    venv.EnvBuilder(with_pip=False).create(tmp / "venv")
    bin_dir = tmp / "venv" / "bin"
    site = Path(subprocess.check_output(
        [bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        text=True).strip())
    # the dependencies, from this environment; echo_cli's own editable finder is a .pth of
    # this site-packages, which a path listed in a .pth file does not run
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
          wheel], cwd=tmp)
    away = tmp / "elsewhere"
    away.mkdir()
    return bin_dir, away


@pytest.mark.slow
def test_the_wheel_lists_every_built_in_config_outside_the_repository(installed):
    bin_dir, away = installed
    where = _run([bin_dir / "python", "-c", "import echo_cli.config.builtin as b; "
                  "print(b.folder())"], cwd=away).stdout.strip()
    assert where.startswith(str(bin_dir.parent)) and "site-packages" in where
    listed = _run([bin_dir / "echo-cli", "configs"], cwd=away).stdout
    assert [line.split()[0] for line in listed.splitlines() if line.strip()] == CONFIGS


@pytest.mark.slow
def test_the_wheel_trains_a_built_in_config_by_name_outside_the_repository(installed):
    bin_dir, away = installed
    _run([bin_dir / "echo-cli", "train", "lag1", "--set", "train.epochs=5", "--out", "run"],
         cwd=away)
    assert (away / "run" / "metrics.json").is_file()


@pytest.mark.slow
def test_the_wheel_copies_its_configs_out_for_editing(installed):
    bin_dir, away = installed
    _run([bin_dir / "echo-cli", "init", "configs"], cwd=away)
    assert sorted(p.stem for p in (away / "configs").glob("*.yaml")) == CONFIGS
    # the copies work as in a clone: csv_colours.yaml reads configs/data/dice.csv
    _run([bin_dir / "echo-cli", "check-data", "configs/csv_colours.yaml", "--rows", "3"],
         cwd=away)
    again = subprocess.run([bin_dir / "echo-cli", "init", "configs"], cwd=away,
                           capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.startswith("error: ")
    assert len(again.stderr.strip().splitlines()) == 1
