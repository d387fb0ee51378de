"""modern.md and the terminal's modern table: selective against plain copying per kind,
recall across lengths, memory capacity beside N, then Gu & Dao's published rows, set apart.

    text = modern_markdown(table, sources=["runs/modern-copy"])
    console.print(*modern_tables(table))
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from echo_cli.output.fitted import Fitted
from echo_cli.output.report import plain, printable
from echo_cli.output.tables import markdown_table

# Gu & Dao (2023), "Mamba: Linear-Time Sequence Modeling with Selective State Spaces".
# Table 1, selective copying at length 4,096 with 16 tokens and a vocabulary of 16: accuracy
# by architecture and inner layer, as published (not measured here).
GU_DAO_SELECTIVE = [
    ("no gate (S4)", "S4", "18.3%"),
    ("H3", "S4", "57.0%"),
    ("Mamba", "S4", "56.4%"),
    ("no gate, H3 or Mamba", "S6", "97.0% to 99.8%"),
]
# Table 11, induction heads trained at length 256 and scored at 2^6 .. 2^20.
GU_DAO_INDUCTION = [
    ("Mamba", "100% at every length tested, up to 2^20 = 1,048,576"),
    ("attention", "58.6% at 512, twice the training length"),
]
SCALE = ("their scale: sequences of 4,096 steps, 400k training steps, a GPU; ours: L=64, a "
         "few thousand updates, a 2-core CPU")


def _accuracy(p: dict[str, Any]) -> str:
    if p["seeds"] > 1:
        return f"{p['accuracy']:.3f} ({p['lowest']:.3f}-{p['highest']:.3f}, {p['seeds']} seeds)"
    return f"{p['accuracy']:.3f} ({p['ci95_low']:.3f}-{p['ci95_high']:.3f})"


def _to_target(p: dict[str, Any]) -> str:
    if p["target_accuracy"] is None:
        return "-"
    if p["updates_to_target"] is None:
        return f"not in {p['updates']:,}"
    where = f" ({p['reached']}/{p['seeds']} seeds)" if p["seeds"] > 1 else ""
    return f"{p['updates_to_target']:,.0f}{where}"


def copying_columns(settings: list[str]) -> list[str]:
    columns = ["kind", "units", "params"]
    for setting in settings:
        columns += [f"{setting}: accuracy (95% CI)", f"{setting}: updates to target",
                    f"{setting}: train s"]
    return [*columns, "chance"]


def copying_cells(line: dict[str, Any], settings: list[str]) -> list[str]:
    cells = [line["kind"], str(line["units"]), f"{line['parameters']:,}"]
    chance = "-"
    for setting in settings:
        p = line["settings"].get(setting)
        if p is None:
            cells += ["-", "-", "-"]
            continue
        cells += [_accuracy(p), _to_target(p), f"{p['train_seconds']:.0f}"]
        chance = f"{p['chance']:.4g}"
    return [*cells, chance]


def length_columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    keys = sorted({k for r in rows for k in r if k.startswith("accuracy_at_")},
                  key=lambda k: int(k.rsplit("_", 1)[1]))
    return ["setting", "kind", "units", "params", *[f"at {k.rsplit('_', 1)[1]}" for k in keys],
            "chance"], keys


def length_cells(r: dict[str, Any], keys: list[str]) -> list[str]:
    return [r["setting"], r["kind"], str(r["units"]), f"{r['parameters']:,}",
            *[f"{r[k]:.3f}" if r.get(k) is not None else "-" for k in keys],
            f"{r['chance']:.4g}"]


CAPACITY_COLUMNS = ["kind", "trained on", "N (the bound)", "memory capacity", "MC / N"]


def capacity_rows(table) -> list[list[str]]:
    rows = []
    for p in [p for line in table.copying for p in line["settings"].values()] + table.lengths:
        if p["capacity"] is not None:
            rows.append([p["kind"], p["setting"], str(p["capacity_bound"]),
                         f"{p['capacity']:.2f}", f"{p['capacity'] / p['capacity_bound']:.0%}"])
    return rows


def modern_markdown(table, *, sources: list[str]) -> str:
    """modern.md: the measured tables, then the published rows under their own heading."""
    parts = ["<!-- written by `echo-cli modern-table`; every number before \"Published\" comes "
             "from a run's metrics.json or capacity.json -->\n# Memory in modern sequence "
             "models\n\n"]
    if table.copying:
        budgets = sorted({p["updates"] for line in table.copying
                          for p in line["settings"].values()})
        targets = sorted({p["target_accuracy"] for line in table.copying
                          for p in line["settings"].values() if p["target_accuracy"]})
        target = " or ".join(f"{t:g}" for t in targets) or "none set"
        parts += ["## Selection or retention: copying at the same budget\n\n"
                  f"Held-out recall accuracy on fresh sequences after "
                  f"{' or '.join(f'{b:,}' for b in budgets)} updates, and the updates at "
                  f"which validation first reached the target ({target}; training went "
                  f"on to the budget). Only the recalled tokens are scored. Train s: wall "
                  f"seconds of training, with the sweep's runs side by side, one per "
                  f"core.\n\n",
                  markdown_table(copying_columns(table.settings),
                                 [copying_cells(line, table.settings)
                                  for line in table.copying])]
    if table.lengths:
        columns, keys = length_columns(table.lengths)
        parts += ["\n## Recall at lengths never trained on\n\nHeld-out accuracy of the same "
                  "weights at each sequence length (eval.lengths).\n\n",
                  markdown_table(columns, [length_cells(r, keys) for r in table.lengths])]
    capacity = capacity_rows(table)
    if capacity:
        parts += ["\n## Memory capacity beside its bound\n\nMC = Σ r²(k) (Jaeger 2001) of "
                  "each trained model's state, from `echo-cli capacity RUN`: i.i.d. input "
                  "from U(-0.8, 0.8), k = 1 .. 2N.\n\n",
                  markdown_table(CAPACITY_COLUMNS, capacity)]
    parts += ["\n## Published, for comparison (not measured here)\n\n"
              f"Gu & Dao (2023), \"Mamba\", Table 1 (selective copying) and Table 11 "
              f"(induction heads, trained at length 256); {SCALE}.\n\n",
              markdown_table(["architecture", "layer", "selective copying accuracy"],
                             [list(r) for r in GU_DAO_SELECTIVE]),
              "\n", markdown_table(["model", "induction heads, beyond the training length"],
                                   [list(r) for r in GU_DAO_INDUCTION]),
              "\nRun directories: " + ", ".join(f"`{printable(s)}`" for s in sources) + "\n"]
    return "".join(parts)


def modern_tables(table) -> list[Fitted]:
    """The terminal's tables: copying, lengths, capacity (those with rows)."""
    out = []
    if table.copying:
        out.append(_table("copying at the same budget (recall accuracy)",
                          copying_columns(table.settings),
                          [copying_cells(line, table.settings) for line in table.copying]))
    if table.lengths:
        columns, keys = length_columns(table.lengths)
        out.append(_table("recall at lengths never trained on", columns,
                          [length_cells(r, keys) for r in table.lengths]))
    capacity = capacity_rows(table)
    if capacity:
        out.append(_table("memory capacity beside N", CAPACITY_COLUMNS, capacity))
    return out


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Fitted:
    table = Table(title=title)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*[plain(c) for c in row])
    return Fitted(table, heading=2, keyed=True)
