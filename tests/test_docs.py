"""The docs are checked, not trusted: README.md and every page of docs/ render their headings
as CommonMark, every `echo-cli ...` line in them runs against the Typer app (the command, its
options, the configs it names), the site builds with `mkdocs build --strict`, its generated
reference holds every config key, command and metrics field, and the README's figures match
the files the tool wrote."""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import typer
from markdown_it import MarkdownIt

from echo_cli.cli import app
from echo_cli.config import builtin
from echo_cli.config.loading import leaf_keys
from echo_cli.store.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
IDS = [str(p.relative_to(ROOT)) for p in PAGES]
PARSER = MarkdownIt("commonmark").enable("table")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures = _load("readme_figures", ROOT / "docs" / "scripts" / "readme_figures.py")


# ---------------------------------------------------------------------------------------------
# every `## ` line is a heading

def naive_fenced_lines(lines: list[str]) -> set[int]:
    """Lines inside fences, decided line by line: a line starting with ``` or ~~~ opens or
    closes one. The parser cannot decide this, since a fence that never closes makes it call
    every later heading fence content."""
    inside, marker, fenced = False, "", set()
    for n, line in enumerate(lines):
        found = re.match(r" {0,3}(`{3,}|~{3,})", line)
        if found and (not inside or found.group(1)[0] == marker):
            fenced.add(n)
            inside, marker = not inside, found.group(1)[0]
        elif inside:
            fenced.add(n)
    return fenced


def unrendered_headings(text: str) -> list[str]:
    """`line N: ## ...` for each line that starts with `## `, outside a fence, and does not
    render as a heading."""
    lines = text.splitlines()
    headings = {tok.map[0] for tok in PARSER.parse(text) if tok.type == "heading_open"}
    fenced = naive_fenced_lines(lines)
    return [f"line {n + 1}: {line}" for n, line in enumerate(lines)
            if line.startswith("## ") and n not in fenced and n not in headings]


def test_the_check_catches_a_fence_closed_with_text_on_its_line():
    broken = "# t\n\n```\ncode\n``` and text\n\n## Development\n\nmore\n"
    assert unrendered_headings(broken) == ["line 7: ## Development"]
    assert unrendered_headings(broken.replace("``` and text", "```\n\nand text")) == []


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_second_level_heading_renders_as_a_heading(page):
    assert unrendered_headings(page.read_text()) == []


# ---------------------------------------------------------------------------------------------
# every `echo-cli ...` line runs against the Typer app

PLACEHOLDER = re.compile(r"^([A-Z][A-Z_]*(\.\.\.)?|\.\.\.)$")  # CONFIG, RUN..., COMMAND, ...
CONFIG_PATH = re.compile(r"^configs/[^<>*]+\.ya?ml$")
STOP = {"|", "||", "&&", ";", ">", ">>", "<", "&", "2>", "2>&1"}


def _logical_lines(block: str) -> list[str]:
    """The block's lines, with `\\`-continued lines joined."""
    return re.sub(r"\\\n\s*", " ", block).splitlines()


def command_lines(text: str) -> list[str]:
    """Every echo-cli command in the page: lines of shell code blocks (in console and plain
    blocks, those after a `$ ` prompt), and inline code spans that start with echo-cli."""
    found = []
    for token in PARSER.parse(text):
        if token.type == "fence" and token.info.strip() in ("bash", "sh", "shell", "console", ""):
            prompted = token.info.strip() in ("console", "")
            for line in _logical_lines(token.content):
                if prompted and not line.startswith("$ "):
                    continue
                line = line.removeprefix("$ ")
                if re.search(r"(^|\|\s*)(echo-cli|python -m echo_cli)\b", line):
                    found.append(line)
        elif token.type == "inline":
            found += [child.content for child in token.children or []
                      if child.type == "code_inline"
                      and re.match(r"(echo-cli|python -m echo_cli) ", child.content)]
    return found


def invocations(line: str) -> list[list[str]]:
    """The argument lists given to echo-cli on one shell line (after a pipe too)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    tokens = list(lexer)
    calls, i = [], 0
    while i < len(tokens):
        start = None
        if tokens[i] == "echo-cli":
            start = i + 1
        elif tokens[i:i + 3] == ["python", "-m", "echo_cli"]:
            start = i + 3
        if start is None:
            i += 1
            continue
        end = start
        while end < len(tokens) and tokens[end] not in STOP:
            end += 1
        calls.append(tokens[start:end])
        i = end
    return calls


def problems(args: list[str]) -> list[str]:
    """What is wrong with `echo-cli ARGS`: an unknown command or option, or a config that
    does not exist. Click parses the line as it would run it, without running it."""
    command = typer.main.get_command(app)
    chain = [command]
    parsed = [a for a in args if a != "--version"]  # its callback prints, even when resilient
    try:
        ctx = command.make_context("echo-cli", parsed, resilient_parsing=True)
        while hasattr(command, "resolve_command"):
            rest = [*ctx._protected_args, *ctx.args]
            if not rest or PLACEHOLDER.match(rest[0]):
                return []
            name, command, rest = command.resolve_command(ctx, rest)
            if command is None:
                return [f"no command {rest[0] if rest else name!r}"]
            chain.append(command)
            ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=True)
    except typer.BadParameter.__mro__[1] as err:  # the vendored Click's UsageError
        return [err.format_message()]
    # Click's resilient parsing lets an unknown option pass: name them here
    known = {"--help"} | {o for c in chain for p in c.params
                          for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]}
    found = [f"no option {token.split('=')[0]} in echo-cli {' '.join(c.name for c in chain[1:])}"
             for token in args if re.match(r"--?[a-zA-Z]", token)
             and token.split("=")[0] not in known]
    config = ctx.params.get("config")
    if config is not None:
        given = str(config)
        if "/" not in given and not given.endswith((".yaml", ".yml")) \
                and not PLACEHOLDER.match(given) and given not in builtin.names():
            found.append(f"{given} is neither a file nor a built-in config")
    for token in args:
        if CONFIG_PATH.match(token) and not (ROOT / token).is_file():
            found.append(f"{token} does not exist")
    return found


DOC_COMMANDS = [(page, line) for page in PAGES for line in command_lines(page.read_text())]


def test_the_docs_have_command_lines_to_check():
    assert len(DOC_COMMANDS) > 100


def test_the_check_catches_a_renamed_option_a_missing_command_and_a_missing_config():
    assert problems(["train", "configs/lag1.yaml", "--sett", "a=1"])
    assert problems(["trian", "configs/lag1.yaml"])
    assert problems(["train", "configs/nope.yaml"])
    assert problems(["train", "nope"])
    assert problems(["config", "show", "configs/lag1.yaml", "--set", "train.epochs=5"]) == []
    assert invocations("seq 1 12 | echo-cli stream runs/s --heldout 5  # a comment's text") == [
        ["stream", "runs/s", "--heldout", "5"]]


@pytest.mark.parametrize(("page", "line"), DOC_COMMANDS,
                         ids=[f"{p.relative_to(ROOT)}: {line[:60]}" for p, line in DOC_COMMANDS])
def test_every_command_line_in_the_docs_runs_against_the_app(page, line):
    for args in invocations(line):
        assert problems(args) == [], f"{page.relative_to(ROOT)}: {line}"


MAKE_TARGETS = set(re.findall(r"^([a-zA-Z0-9_-]+):", (ROOT / "Makefile").read_text(), re.M))


def test_every_make_target_in_the_docs_exists():
    named = set()
    for page in PAGES:
        for token in PARSER.parse(page.read_text()):
            code = [token.content] if token.type == "fence" else [
                child.content for child in token.children or [] if child.type == "code_inline"]
            for text in code:
                named |= set(re.findall(r"(?:^|[|;&]\s*)make ([a-z][a-z0-9_-]*)\b", text, re.M))
    assert len(named) > 10 and named - MAKE_TARGETS == set()


def test_the_readmes_relative_links_point_at_files():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:|#", t)]
    assert local and [t for t in local if not (ROOT / t).exists()] == []


# ---------------------------------------------------------------------------------------------
# the README: short, in the order, its figures from the files the tool wrote

def test_the_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text()
    assert len(text.encode()) <= 12 * 1024
    first = next(line for line in text.splitlines()[1:] if line.strip())
    assert "make run" in first and "make test" in first
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections == ["The tutorial's three results", "Set up", "Quickstart", "Speed",
                        "Documentation", "Development"]


def test_the_readmes_speed_figures_are_dated_and_name_the_machine_and_the_method():
    speed = README.read_text().split("## Speed", 1)[1].split("## ", 1)[0]
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", speed)
    assert "cores" in speed and "(docs/guides/speed.md)" in speed
    assert {"--seeds", "sweep", "stream"} <= set(re.findall(r"--seeds|sweep|stream", speed))


def test_the_quickstart_is_ten_lines_of_the_main_commands():
    quickstart = README.read_text().split("## Quickstart", 1)[1].split("## ", 1)[0]
    lines = command_lines(quickstart)
    assert len(lines) <= 10
    used = {args[0] for line in lines for args in invocations(line) if args}
    assert {"train", "check-data", "predict", "stream", "inspect"} <= used


def test_the_readmes_results_table_is_results_csv():
    assert figures.section(README.read_text(), "tutorial") == figures.tutorial_block()


def test_the_readmes_extras_table_names_every_extra_with_a_date_and_a_machine():
    extras = metadata.metadata("echo-cli").get_all("Provides-Extra")
    assert set(figures.EXTRAS) == set(extras)
    block = figures.section(README.read_text(), "extras")
    assert all(f"| `{name}` |" in block for name in extras)
    assert re.search(r"measured by `make readme-figures` on \d{4}-\d\d-\d\d \(\d+ cores", block)


# ---------------------------------------------------------------------------------------------
# the site builds with --strict, and its generated reference is complete

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_site_builds_with_strict(site):
    assert (site / "index.html").is_file()
    assert (site / "results" / "inspect" / "stream" / "state.png").is_file()


def test_every_config_key_of_the_schema_is_in_the_generated_reference(site):
    page = (site / "reference" / "config-keys" / "index.html").read_text()
    missing = [key for key in leaf_keys() if f"<code>{key}</code>" not in page]
    assert missing == []


def test_every_command_and_metrics_field_is_in_the_generated_reference(site):
    commands = (site / "reference" / "commands" / "index.html").read_text()

    def paths(command, path):
        yield " ".join(path)
        for name in getattr(command, "list_commands", lambda ctx: [])(None):
            yield from paths(command.get_command(None, name), [*path, name])

    every = list(paths(typer.main.get_command(app), ["echo-cli"]))[1:]  # the app: the title
    assert len(every) > 15
    assert [p for p in every if f"<code>{p}</code>" not in commands] == []
    metrics = (site / "reference" / "metrics" / "index.html").read_text()
    assert [f for f in Metrics.model_fields if f"<code>{f}</code>" not in metrics] == []


def test_the_results_pages_include_the_files_the_tool_wrote(site):
    page = (site / "results" / "index.html").read_text()
    rows = [line for line in (ROOT / "results" / "results.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| name ")]
    assert len(rows) > 10
    assert all(f"<td>{row.split(' | ')[0].removeprefix('| ')}</td>" in page for row in rows)
