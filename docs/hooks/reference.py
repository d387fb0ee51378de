"""MkDocs hook: the reference pages, generated from the code at every build, so they cannot go
stale, and the files the tool writes (results/, bench/) added to the site.

    mkdocs build --strict      # mkdocs.yml names this file under `hooks:`

Generated pages (in memory, never written into docs/, where a stub of each says so):
    reference/commands.md      every command and option, from the Typer app (Typer's own
                               `typer ... utils docs` generator)
    reference/config-keys.md   every config key: type, default, meaning (config/keys.py)
    reference/metrics.md       every metrics.json field, from store/metrics.Metrics
Markers replaced in hand-written pages:
    <!-- generated: exit-codes -->    the classes that set exit_code, typer.Exit(N), signals
    <!-- generated: environment -->   every ECHO_CLI_* variable the code reads
    <!-- generated: bench -->         every bench/*.json, as tables

A fact the code has and this file cannot describe (a new metrics field, a new ECHO_CLI_*
variable) fails the build with a line that says where to add its meaning.
"""

from __future__ import annotations

import ast
import html
import json
import re
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: docs/hooks/ -> docs/ -> root
COPIED = {"results": (".png", ".csv", ".json", ".svg"), "bench": (".png", ".json", ".svg")}
MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")


class ReferenceError(Exception):
    """Something the code holds that the reference cannot describe: the build fails."""


# ---------------------------------------------------------------------------------------------
# small helpers

def cell(text: object) -> str:
    """Text for one Markdown table cell: pipes escaped, HTML's < > & shown as written."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _escape_outside_code(text: str) -> str:
    """`<name>` in a help text is prose, not an HTML tag: escape < and > outside code spans
    and fenced blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or line.startswith("```"):
            out.append(line)
            continue
        parts = line.split("`")
        parts[::2] = [p.replace("<", "&lt;").replace(">", "&gt;") for p in parts[::2]]
        out.append("`".join(parts))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# reference/commands.md

def commands_page() -> str:
    """Every command, argument and option of `echo-cli`, in --help's order."""
    import typer
    from typer.cli import get_docs_for_click

    from echo_cli.cli import app

    command = typer.main.get_command(app)
    text = get_docs_for_click(obj=command, ctx=typer.Context(command), name="echo-cli",
                              title="Commands")
    head = ("# Commands\n\nGenerated from the command line itself at every docs build "
            "(`echo-cli COMMAND --help` says the same).\n")
    return _escape_outside_code(head + text.removeprefix("# Commands\n"))


# ---------------------------------------------------------------------------------------------
# reference/config-keys.md

def config_keys_page() -> str:
    """Every key of the schema with its type, default and meaning, section by section; the
    data keys task by task."""
    from echo_cli import tasks
    from echo_cli.config.keys import SECTIONS, key_docs

    docs = key_docs()
    parts = ["# Config keys\n",
             "Every key a config file or `--set section.key=value` can set, generated from the "
             "schema at every docs build (`echo-cli config keys` prints the same). A config "
             "lists only what differs from these defaults. A default such as "
             "`5 (copy, adding: 32)` is the echo's, then a memory task's own.\n"]
    top = [d for d in docs if "." not in d.key]
    parts += ["## Top level\n", _key_table(top)]
    for section, words in SECTIONS.items():
        inside = [d for d in docs if d.key.startswith(section + ".")]
        parts.append(f"## {section}\n\n{words[0].upper() + words[1:]}.\n")
        if section != "data":
            parts.append(_key_table(inside))
            continue
        by_task: dict[str, list] = {"all tasks": []}
        for doc in inside:
            owner, sep, rest = doc.description.partition(": ")
            if sep and owner in tasks.TASKS:
                by_task.setdefault(owner, []).append(
                    type(doc)(doc.key, doc.kind, doc.default, doc.allowed, rest))
            else:
                by_task["all tasks"].append(doc)
        for owner, owned in by_task.items():
            title = owner if owner == "all tasks" else f"data.task: {owner}"
            parts += [f"### {title}\n", _key_table(owned)]
    return "\n".join(parts)


def _key_table(docs: list) -> str:
    return table(["key", "type", "default", "meaning"],
                 [[f"`{d.key}`", d.kind, d.default if d.default != "''" else '""',
                   d.description] for d in docs])


# ---------------------------------------------------------------------------------------------
# reference/metrics.md

# What each field of metrics.json means. The field list, types and defaults come from the
# record itself; a field missing here (or a Field(description=...) in metrics.py) fails the
# build, and so does a name here that the record no longer has.
MEANINGS = {
    "name": "the config's name",
    "seed": "the config's seed: training, validation, held-out data and the initial weights "
            "come from separate streams of it",
    "task": "data.task: echo, copy, adding, ...",
    "data_source": "data.source: random, or csv (your own file)",
    "engine": "fast or tutorial (--engine)",
    "backend": "the Keras backend that ran: tensorflow or jax",
    "epochs": "epochs asked for (train.epochs)",
    "epochs_completed": "epochs trained; fewer when interrupted or stopped at a target",
    "interrupted": "true when Ctrl-C, SIGTERM or SIGHUP stopped the run early",
    "model_kind": "model.kind",
    "parameters": "trainable weights",
    "frozen_parameters": "the one-hot table: looked up, never trained",
    "multiply_adds_per_sample": "the forward pass's multiply-adds for one sample",
    "updates": "weight updates made",
    "samples": "training samples seen",
    "train_seconds": "wall-clock seconds of training",
    "seconds_per_update": "warm seconds per update, after the first chunk and its compiling",
    "phase_seconds": "seconds per phase of the command: import, build, compile, train, "
                     "evaluate, save",
    "peak_rss_mb": "the process's peak resident memory during training and evaluation, in MB",
    "chance_accuracy": "the accuracy of guessing: 1/n_unique for the echo",
    "final_train_loss": "training loss of the last epoch",
    "final_train_accuracy": "training accuracy of the last epoch",
    "baseline_loss": "the task's memoryless loss (ln n, 10·ln 8/(T+20), 1/6), beside "
                     "heldout_loss",
    "heldout_loss": "loss on the fresh held-out sequences",
    "heldout_accuracy": "accuracy on the fresh held-out sequences: heldout_correct / "
                        "heldout_targets (the adding problem: sums within the tolerance)",
    "heldout_correct": "held-out targets predicted right",
    "heldout_targets": "held-out targets scored",
    "heldout_sequences": "fresh held-out sequences scored (eval.sequences)",
    "ci95_low": "lower end of heldout_accuracy's 95% Wilson interval",
    "ci95_high": "upper end of heldout_accuracy's 95% Wilson interval",
    "tolerance": "the adding problem: a sum predicted within this counts as right",
    "receptive_field": "convolutional kinds: how many steps back each output sees",
    "heldout_by_length": "eval.lengths: the held-out figures at each other length, "
                         "{T: {accuracy, correct, ...}}",
    "heldout_unscored_positions": "sequence targets: positions whose target lies before the "
                                  "window or the sequence, left out",
    "heldout_exact_match": "sequence targets: samples with every scored position right",
    "heldout_per_position": "sequence targets: accuracy at each position of the window",
    "target_accuracy": "train.target_accuracy, when set",
    "target_loss": "train.target_loss, when set",
    "validation_sequences": "fresh validation sequences the target is checked on",
    "reached_target": "whether the validation target was reached",
    "epochs_to_target": "epochs until the target was first reached",
    "samples_to_target": "training samples until the target was first reached",
    "final_validation_accuracy": "validation accuracy at the last check",
    "final_validation_loss": "validation loss at the last check",
    "failed_step": "a step that failed after training (save, evaluate, ...); what was done "
                   "before it is kept",
    "error": "that step's error, in one line",
    "config_sha256": "digest of config.yaml as trained: an edit made later is caught before "
                     "the model is used",
    "provenance": "the versions of echo-cli, Python, Keras, the backend and numpy, and the git "
                  "commit of the working directory",
}


def metrics_page() -> str:
    """Every field of metrics.json in file order, with its type, whether it is always
    written, and its meaning."""
    from echo_cli.store.metrics import Metrics

    fields = Metrics.model_fields
    stale = sorted(set(MEANINGS) - set(fields))
    missing = [n for n, f in fields.items() if not (f.description or MEANINGS.get(n))]
    if stale or missing:
        raise ReferenceError(
            f"docs/hooks/reference.py MEANINGS: {', '.join(missing)} lack a meaning (add one "
            f"there, or a Field(description=...) in echo_cli/store/metrics.py)"
            f"{'; ' + ', '.join(stale) + ' are no longer fields' if stale else ''}")
    rows = []
    for name, field in fields.items():
        written = ("always" if field.is_required() else
                   "when it applies" if field.default is None else
                   f"always (older runs: {json.dumps(field.default)})")
        rows.append([f"`{name}`", _type_words(field.annotation), written,
                     field.description or MEANINGS[name]])
    return "\n".join([
        "# metrics.json\n",
        "Every run directory's `metrics.json`, field by field, generated from its typed "
        "record (`echo_cli/store/metrics.py`) at every docs build. The file is written last, "
        "so a run that has one is finished; a field that does not apply to a run is left "
        "out. `results`, `compare`, sweeps and the notebook read runs through this record, "
        "and refuse a file with an impossible value (an accuracy outside 0..1, more right "
        "answers than targets, NaN).\n",
        table(["field", "type", "written", "meaning"], rows)])


def _type_words(annotation: object) -> str:
    words = {str: "text", int: "integer", float: "number", bool: "true or false"}
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_words(a) for a in args)
    origin = typing.get_origin(annotation)
    if origin is dict:
        return f"mapping of text to {_type_words(typing.get_args(annotation)[1])}"
    if origin is list:
        return f"list of {_type_words(typing.get_args(annotation)[0])}"
    if annotation is type(None):
        return "null"
    return words.get(annotation, getattr(annotation, "__name__", str(annotation)))


# ---------------------------------------------------------------------------------------------
# markers: exit codes, environment variables, bench figures

EXIT_MEANINGS = {
    0: "done",
    1: "a step failed after training, or a run of a sweep failed: what was done is kept",
    2: "the input was wrong (a config, a flag, a file, a number): one line says what and how "
       "to fix it, and nothing is created",
}


def _exit_code_sources() -> dict[int, list[str]]:
    """Each exit code the code names: the error classes that set `exit_code = N` (their
    subclasses share it), and literal `typer.Exit(N)` calls, read from the source."""
    sources: dict[int, list[str]] = {}
    for path in sorted((ROOT / "echo_cli").rglob("*.py")):
        module = path.relative_to(ROOT / "echo_cli").with_suffix("").as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                            and any(getattr(t, "id", "") == "exit_code" for t in stmt.targets)):
                        sources.setdefault(stmt.value.value, []).append(
                            f"{node.name} and its subclasses ({module}.py)")
        for code in re.findall(r"typer\.Exit\((\d+)\)", path.read_text()):
            sources.setdefault(int(code), []).append(f"typer.Exit({code}) in {module}.py")
    return sources


def exit_codes() -> str:
    from echo_cli.training import signals

    sources = _exit_code_sources()
    unknown = sorted(set(sources) - set(EXIT_MEANINGS))
    if unknown:
        raise ReferenceError(f"docs/hooks/reference.py EXIT_MEANINGS lacks exit code "
                             f"{', '.join(map(str, unknown))}, which echo_cli uses")
    rows: list[list[object]] = [[code, EXIT_MEANINGS[code],
                                 "; ".join(sources.get(code, [])) if code else ""]
                                for code in sorted(set(sources) | {0})]
    for signum, code in sorted(signals.EXIT_CODES.items(), key=lambda kv: kv[1]):
        rows.append([code, f"stopped by {signals.NAMES[signum]}; what was done is kept",
                     "training/signals.py"])
    return table(["exit code", "meaning", "where it comes from"], rows)


# Each environment variable echo-cli reads. The ECHO_CLI_* names are found in the code; one
# that is missing here fails the build.
ENVIRONMENT = {
    "ECHO_CLI_COMPILE_CACHE": "0 (or off, false, no) turns off JAX's persistent compile cache "
                              "in $XDG_CACHE_HOME/echo-cli/jax",
    "ECHO_CLI_DEBUG": "1 prints the traceback of a step that failed after training, for bug "
                      "reports",
    "ECHO_CLI_STOP_ON_EOF": "set by a sweep for its runs: the end of stdin asks the run to stop "
                            "(so no run outlives its sweep); not for users",
}
OTHERS = {
    "KERAS_BACKEND": "tensorflow or jax: wins over train.backend: auto",
    "XDG_CACHE_HOME": "where the JAX compile cache lives (default ~/.cache)",
    "MLFLOW_TRACKING_URI": "log every train and sweep to this MLflow store, as --mlflow does",
    "MLFLOW_EXPERIMENT_NAME": "the MLflow experiment (default echo-cli)",
    "ECHO_NOTEBOOK_EPOCHS": "examples/echo.ipynb only: train each experiment for this many "
                            "epochs",
}


def environment() -> str:
    found = set()
    for path in (ROOT / "echo_cli").rglob("*.py"):
        found |= set(re.findall(r"\bECHO_CLI_[A-Z_]+\b", path.read_text()))
    missing = sorted(found - set(ENVIRONMENT))
    if missing:
        raise ReferenceError(f"docs/hooks/reference.py ENVIRONMENT lacks {', '.join(missing)}, "
                             f"which echo_cli reads; say there what it does")
    stale = sorted(set(ENVIRONMENT) - found)
    if stale:
        raise ReferenceError(f"docs/hooks/reference.py ENVIRONMENT names {', '.join(stale)}, "
                             f"which echo_cli no longer reads")
    rows = [[f"`{k}`", v] for k, v in sorted(ENVIRONMENT.items())]
    rows += [[f"`{k}`", v] for k, v in OTHERS.items()]
    return table(["variable", "what it does"], rows)


def bench() -> str:
    """Each bench/*.json that the bench commands wrote: when, where, and its rows."""
    parts = []
    for path in sorted((ROOT / "bench").glob("*.json")):
        data = json.loads(path.read_text())
        title = f"### bench/{path.name}\n"
        when = (f"Measured on {data.get('date', 'an unrecorded date')}, "
                f"on {data.get('machine', 'an unrecorded machine')}.\n")
        rows = data.get("rows") or data.get("measurements")
        body = []
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            header = list(dict.fromkeys(k for r in rows for k in r
                                        if not isinstance(r[k], (dict, list))))
            body.append(table(header, [[_plain(r.get(k, "")) for k in header] for r in rows]))
        rest = {k: v for k, v in data.items()
                if k not in ("date", "machine", "rows", "measurements")}
        if rest:
            body.append("??? note \"the rest of the file\"\n\n    ```json\n" + "\n".join(
                "    " + line for line in json.dumps(rest, indent=2).splitlines())
                + "\n    ```\n")
        parts += [title, when, *body]
    return "\n".join(parts)


def _plain(value: object) -> object:
    return f"{value:.4g}" if isinstance(value, float) else value


GENERATED = {"reference/commands.md": commands_page,
             "reference/config-keys.md": config_keys_page,
             "reference/metrics.md": metrics_page}
MARKERS = {"exit-codes": exit_codes, "environment": environment, "bench": bench}


# ---------------------------------------------------------------------------------------------
# the MkDocs events

def on_files(files, config):
    """Add the generated pages, and the pictures and data the tool wrote, to the site."""
    from mkdocs.structure.files import File

    for name, make in GENERATED.items():
        stub = files.get_file_from_path(name)  # docs/ holds a stub, for readers of the repo
        if stub is not None:
            files.remove(stub)
        files.append(File.generated(config, name, content=make()))
    for folder, suffixes in COPIED.items():
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in suffixes:
                files.append(File(path.relative_to(ROOT).as_posix(), src_dir=str(ROOT),
                                  dest_dir=config["site_dir"],
                                  use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    """Replace each `<!-- generated: NAME -->` with what MARKERS[NAME] makes."""
    def replace(match: re.Match) -> str:
        if match.group(1) not in MARKERS:
            raise ReferenceError(f"{page.file.src_path}: no generator for {match.group(0)}; "
                                 f"known: {', '.join(MARKERS)}")
        return MARKERS[match.group(1)]()

    return MARKER.sub(replace, markdown)
