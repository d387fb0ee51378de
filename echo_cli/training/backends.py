"""Which Keras backend runs, and getting it ready: the choice, the import, the compile cache.

    name, why = choose("auto", engine="fast")   # ("jax", "the fastest installed for ...")
    keras = import_keras(name)                  # quiet, with JAX's persistent compile cache
    save_model(model, path)                     # model.keras, without importing TensorFlow

`auto` picks, per run, the fastest backend that is installed and right for the engine: JAX for
the fast engine when JAX is installed, TensorFlow for `--engine tutorial` (the tutorial's own
stack, and Keras's own fit) or when JAX is missing. An explicit train.backend or KERAS_BACKEND
wins, and so does a backend Keras already runs on in this process.

JAX keeps compiled programs in a per-user cache ($XDG_CACHE_HOME/echo-cli/jax, else
~/.cache/echo-cli/jax), so a second run of the same shapes skips compiling;
ECHO_CLI_COMPILE_CACHE=0 turns it off.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

from echo_cli.errors import EchoError
from echo_cli.training import startup

BACKENDS = ("tensorflow", "jax")
CACHE_SWITCH = "ECHO_CLI_COMPILE_CACHE"
import_seconds = 0.0  # how long this process took to import Keras, until a run takes it


class BackendError(EchoError, RuntimeError):
    """A Keras backend that cannot be used here."""


def jax_installed() -> bool:
    return importlib.util.find_spec("jax") is not None


def choose(requested: str = "auto", *, engine: str = "fast",
           here: bool = True) -> tuple[str, str]:
    """The backend a run uses, and why, in a few words.

    here: the run is in this process, so a backend Keras already runs on counts (a sweep
    choosing for its worker processes passes False).

    Raises:
        BackendError: an unknown name, JAX not installed, or Keras already on another.
    """
    loaded = (sys.modules["keras"].backend.backend()
              if here and "keras" in sys.modules else None)
    if requested != "auto":
        name, why = requested, "train.backend"
    elif loaded is not None:  # (importing Keras set $KERAS_BACKEND, so this comes first)
        name, why = loaded, "auto: Keras already runs on it in this process"
    elif os.environ.get("KERAS_BACKEND"):
        name, why = os.environ["KERAS_BACKEND"], "auto: $KERAS_BACKEND"
    elif engine == "tutorial":
        name, why = "tensorflow", "auto: the tutorial engine is the tutorial's own TensorFlow"
    elif jax_installed():
        name, why = "jax", "auto: the fastest installed for the fast engine"
    else:
        name, why = "tensorflow", "auto: JAX is not installed"
    if name not in BACKENDS:
        raise BackendError(f"KERAS_BACKEND must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name == "jax" and not jax_installed():
        raise BackendError("train.backend: jax needs JAX; install it with `pip install '.[jax]'` "
                           "or `make setup EXTRAS=dev,jax`")
    if loaded is not None and loaded != name:
        raise BackendError(f"Keras is already running on {loaded} in this process, so it "
                           f"cannot switch to {name}; run a new process")
    return name, why


def take_import_seconds() -> float:
    """The import's seconds, once: the first run in a process paid for it, the next ones
    (in a sweep's worker) did not."""
    global import_seconds
    seconds, import_seconds = import_seconds, 0.0
    return seconds


def resolve_backend(requested: str = "auto", *, engine: str = "fast") -> str:
    return choose(requested, engine=engine)[0]


def cache_dir() -> Path | None:
    """Where JAX keeps compiled programs, or None when ECHO_CLI_COMPILE_CACHE=0."""
    if os.environ.get(CACHE_SWITCH, "1").lower() in ("0", "off", "false", "no"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "echo-cli" / "jax"


def import_keras(backend: str = "auto"):
    """Import Keras on the backend, silencing TensorFlow's C++ start-up chatter, and on JAX
    turn the persistent compile cache on.

    TensorFlow logs oneDNN and CUDA notices through absl before any Python setting applies;
    they say nothing about the experiment. Python errors still surface after the import.
    """
    global import_seconds
    name = resolve_backend(backend)
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.perf_counter()
    with startup.quiet_stderr(), startup.hidden_from_keras():
        import keras
    if name == "jax":
        _compile_cache()
    import_seconds = time.perf_counter() - started
    return keras


def _compile_cache() -> None:
    import jax

    path = cache_dir()
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # no cache, no harm: it only saves compiling
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def save_model(model, path) -> None:
    """model.keras. Under JAX, Keras's serializer would import TensorFlow (3 s) only to ask
    whether a value is a TensorFlow shape; none can be, so it is told TensorFlow is absent."""
    from echo_cli.models.keras_internals import without_tensorflow

    with startup.quiet_stderr(), without_tensorflow():
        model.save(path)
