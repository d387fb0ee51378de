"""Plots from plain numbers: a run's curves.png and the accuracy-by-setting chart of sweeps and
compare. matplotlib is imported only when a plot is drawn (Agg, no screen needed).

    png = curves_png(history, chance=0.01, title="lag1")     # bytes: the caller writes them
    png = sweep_png(points, x_key="data.lag", line_key="model.kind", chance=0.01, title="...")

Plots are returned as PNG bytes, so the caller writes them whole (files.write_atomic).
This module imports no TensorFlow and nothing from echo_cli.
"""

from __future__ import annotations

import io
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _pyplot().close(fig)
    return buffer.getvalue()


def curves_png(history: list[dict[str, float]], *, chance: float, title: str,
               baseline: float | None = None, epoch_label: str = "epoch (one sequence each)",
               accuracy_label: str = "accuracy", chance_label: str = "chance") -> bytes:
    """curves.png: training loss per epoch beside the task's memoryless baseline, and the
    accuracy figure beside chance, both drawn as dashed lines; validation points when checked.
    """
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [r["loss"] for r in history], linewidth=0.8, label="training")
    losses = [r for r in history if "validation_loss" in r]
    if losses:
        ax_loss.plot([r["epoch"] for r in losses], [r["validation_loss"] for r in losses],
                     "o-", markersize=3, label="validation")
    if baseline is not None:
        ax_loss.axhline(baseline, color="grey", linestyle="--",
                        label=f"memoryless baseline ({baseline:.3g})")
        ax_loss.legend(loc="upper right", fontsize=8)
    ax_loss.set(xlabel=epoch_label, ylabel="training loss", title="loss")
    ax_acc.plot(epochs, [r["accuracy"] for r in history], linewidth=0.8, label="training")
    checks = [r for r in history if "validation_accuracy" in r]
    if checks:
        ax_acc.plot([r["epoch"] for r in checks], [r["validation_accuracy"] for r in checks],
                    "o-", markersize=3, label="validation")
    ax_acc.axhline(chance, color="grey", linestyle="--", label=f"{chance_label} ({chance:.3g})")
    ax_acc.set(xlabel=epoch_label, ylabel=accuracy_label, ylim=(-0.02, 1.02),
               title=accuracy_label)
    ax_acc.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def sweep_png(points: list[dict[str, Any]], *, x_key: str, line_key: str | None,
              chance: float, title: str) -> bytes:
    """Held-out accuracy against x_key, one line per value of line_key, intervals as error bars.

    points: dicts with x_key (and line_key), accuracy, ci95_low, ci95_high.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    groups: dict[Any, list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault(p.get(line_key) if line_key else None, []).append(p)
    xs = list(dict.fromkeys(p[x_key] for p in points))  # grid order for names
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
        xs.sort()
    for label, group in groups.items():
        group = sorted(group, key=lambda p: xs.index(p[x_key]))
        at = [xs.index(p[x_key]) for p in group]
        acc = [p["accuracy"] for p in group]
        err = [[a - p["ci95_low"] for a, p in zip(acc, group, strict=True)],
               [p["ci95_high"] - a for a, p in zip(acc, group, strict=True)]]
        ax.errorbar(at, acc, yerr=err, marker="o", capsize=3,
                    label=f"{line_key}={label}" if line_key else None)
    ax.axhline(chance, color="grey", linestyle="--", label=f"chance ({chance:.3g})")
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set(xlabel=x_key, ylabel="held-out accuracy (95% CI)", ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)
