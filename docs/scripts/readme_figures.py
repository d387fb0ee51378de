"""README.md's figures, written from what the tool wrote, never typed: `make readme-figures`.

    python docs/scripts/readme_figures.py            # both blocks
    python docs/scripts/readme_figures.py tutorial   # only the results table

Each block sits in README.md between `<!-- --8<-- [start:NAME] -->` and
`<!-- --8<-- [end:NAME] -->`, the markers pymdownx.snippets reads too, so the docs site
includes the same text (`--8<-- "README.md:extras"`).

- tutorial: the tutorial's three experiments from results/results.csv (`make results`).
- extras: each extra of pyproject.toml with the installed size of its packages beyond the base
  install, measured in this virtualenv and dated, with the machine named. Run it where every
  extra is installed (`make readme-figures` installs them).

tests/test_docs.py checks that the tutorial block matches results/results.csv and that the
extras block names every extra.
"""

from __future__ import annotations

import csv
import datetime
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TUTORIAL = ("echo_current", "lag_no_context", "lag1")  # the tutorial's three experiments
# What each extra is for; a test fails when pyproject.toml has an extra that is not here.
EXTRAS = {
    "jax": "the fast engine on JAX, the default backend when installed",
    "ray": "`echo-cli sweep --executor ray`: sweeps over more than one machine",
    "mlflow": "`--mlflow URI`: runs and sweeps logged to an MLflow store",
    "notebook": "progress bars in `echo_cli.notebook`, a kernel for examples/echo.ipynb",
    "dev": "the tests and linters (pytest, ruff, hypothesis, import-linter, reservoirpy)",
    "docs": "the documentation site (mkdocs, mkdocs-material, pymdown-extensions)",
}


def tutorial_block(root: Path = ROOT) -> str:
    """The three experiments as a Markdown table, from results/results.csv."""
    with open(root / "results" / "results.csv", newline="") as f:
        rows = {row["name"]: row for row in csv.DictReader(f)}
    lines = ["| config | what it tests | held-out accuracy (95% CI) | chance |",
             "|---|---|---|---|"]
    for name in TUTORIAL:
        row = rows[name]
        accuracy = (f"{float(row['heldout_accuracy']):.2%} ({100 * float(row['ci95_low']):.2f}"
                    f"-{100 * float(row['ci95_high']):.2f})")
        lines.append(f"| `configs/{name}.yaml` | {row['description']} | {accuracy} "
                     f"| {float(row['chance_accuracy']):.0%} |")
    backends = sorted({rows[n]["backend"] for n in TUTORIAL})
    lines.append("")
    lines.append(f"From [results/results.csv](results/results.csv), written by `make results` "
                 f"({', '.join(backends)}, 1,000 fresh held-out sequences each).")
    return "\n".join(lines) + "\n"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(names: list[str], dists: dict, exclude: set[str]) -> set[str]:
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [_norm(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen or name in exclude or name not in dists:
            continue
        seen.add(name)
        for text in dists[name].requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_norm(requirement.name))
    return seen


def _size(dist) -> int:
    """Bytes of every file the distribution installed (its RECORD, compiled files included)."""
    total = 0
    for file in dist.files or []:
        try:
            total += Path(dist.locate_file(file)).stat().st_size
        except OSError:
            pass
    return total


def _machine() -> str:
    model = ""
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = found.group(1).strip() if found else ""
    except OSError:
        pass
    return ", ".join(filter(None, [f"{os.cpu_count()} cores", model or platform.processor(),
                                   platform.system(), f"Python {platform.python_version()}"]))


def extras_block() -> str:
    """The extras with the size of their packages beyond the base install, measured here."""
    from packaging.requirements import Requirement

    dists = {_norm(d.metadata["Name"]): d for d in metadata.distributions()}
    me = dists["echo-cli"]
    base_names, extra_names = [], {name: [] for name in EXTRAS}
    for text in me.requires or []:
        requirement = Requirement(text)
        if requirement.marker is None:
            base_names.append(requirement.name)
        for name in extra_names:
            if requirement.marker is not None and requirement.marker.evaluate({"extra": name}):
                extra_names[name].append(requirement.name)
    base = _closure(base_names, dists, set())
    lines = ["| extra | what it is for | size |", "|---|---|---|",
             f"| (none) | echo-cli and its dependencies: TensorFlow (Keras 3), numpy, pandas, ... "
             f"| {_megabytes(sum(_size(dists[n]) for n in base))} |"]
    for name, what in EXTRAS.items():
        wanted = {_norm(n) for n in extra_names[name]}
        missing = wanted - set(dists)
        packages = _closure(extra_names[name], dists, base)
        size = ("not installed here" if missing else
                "+" + _megabytes(sum(_size(dists[n]) for n in packages)))
        lines.append(f"| `{name}` | {what} | {size} |")
    lines += ["", f"Sizes of the installed files, measured by `make readme-figures` on "
                  f"{datetime.date.today().isoformat()} ({_machine()}); a package that two "
                  f"extras share counts in both."]
    return "\n".join(lines) + "\n"


def _megabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


BLOCKS = {"tutorial": tutorial_block, "extras": extras_block}


def _bounds(text: str, name: str) -> tuple[int, int]:
    start, end = f"<!-- --8<-- [start:{name}] -->\n", f"<!-- --8<-- [end:{name}] -->"
    if start not in text or end not in text:
        raise SystemExit(f"README.md lacks the markers of the {name} block: {start.strip()}")
    first = text.index(start) + len(start)
    return first, text.index(end, first)


def section(text: str, name: str) -> str:
    """The text between README's markers of block `name`."""
    first, last = _bounds(text, name)
    return text[first:last]


def replace(text: str, name: str, block: str) -> str:
    first, last = _bounds(text, name)
    return text[:first] + block + text[last:]


def main(names: list[str]) -> None:
    text = README.read_text()
    for name in names or list(BLOCKS):
        if name not in BLOCKS:
            raise SystemExit(f"no block {name}; the blocks are {', '.join(BLOCKS)}")
        text = replace(text, name, BLOCKS[name]())
    README.write_text(text)
    print(f"wrote {', '.join(names or BLOCKS)} into {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
