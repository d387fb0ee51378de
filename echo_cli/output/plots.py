"""Plots from plain numbers: a run's curves.png and the accuracy-by-setting chart of sweeps and
compare. matplotlib is imported only when a plot is drawn (Agg, no screen needed).

    png = curves_png(history, chance=0.01, title="lag1")     # bytes: the caller writes them
    png = sweep_png(points, x_key="data.lag", line_key="model.kind", chance=0.01, title="...")

Plots are returned as PNG bytes, so the caller writes them whole (files.write_atomic).
Figures are made outside pyplot, so no backend is chosen and no global state is changed (a
notebook's inline plots stay inline). This module imports no TensorFlow and nothing from echo_cli.
"""

from __future__ import annotations

import io
from typing import Any


def _figure(figsize: tuple[float, float]):
    """A Figure of its own, outside pyplot: it needs no screen and leaves no state behind."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _png(fig) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


CURVES_SIZE = (10, 3.6)  # inches


def curves_png(history: list[dict[str, float]], *, chance: float, title: str,
               baseline: float | None = None, epoch_label: str = "epoch (one sequence each)",
               accuracy_label: str = "accuracy", chance_label: str = "chance") -> bytes:
    """curves.png: curves_figure as PNG bytes."""
    return _png(curves_figure(history, chance=chance, title=title, baseline=baseline,
                              epoch_label=epoch_label, accuracy_label=accuracy_label,
                              chance_label=chance_label))


def curves_figure(history: list[dict[str, float]], *, chance: float, title: str,
                  baseline: float | None = None, epoch_label: str = "epoch (one sequence each)",
                  accuracy_label: str = "accuracy", chance_label: str = "chance",
                  figure=None):
    """Training loss per epoch beside the task's memoryless baseline, and the accuracy figure
    beside chance, both drawn as dashed lines; validation points when checked.

    figure: an empty Figure to draw into (a notebook passes one made through pyplot, so that
        Jupyter shows it); default: a new one of CURVES_SIZE, outside pyplot.
    Returns: the Figure.
    """
    epochs = [r["epoch"] for r in history]
    fig = figure if figure is not None else _figure(CURVES_SIZE)
    ax_loss, ax_acc = fig.subplots(1, 2)
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
    return fig


def sweep_png(points: list[dict[str, Any]], *, x_key: str, line_key: str | None,
              chance: float, title: str) -> bytes:
    """Held-out accuracy against x_key, one line per value of line_key, intervals as error bars.

    points: dicts with x_key (and line_key), accuracy, ci95_low, ci95_high.
    """
    fig = _figure((7, 4.2))
    ax = fig.subplots()
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


def state_png(*, t: list[int], labels: list[str], panels: list[tuple[str, Any, tuple]],
              title: str, mark: tuple[int, str] | None = None,
              shade: tuple[int, int, str] | None = None) -> bytes:
    """state.png: one heatmap per panel (units down, time across), the input written under
    each step.

    Args:
        t: the step of each column; labels: what was read at each step, written under it.
        panels: (name, values (units, cols), (vmin, vmax)); panels with the same range share
            one colour scale, drawn once per range.
        mark: (t, label) a step to mark with a line, e.g. where the current target sits.
        shade: (first t, last t, label) a span to shade, e.g. copy memory's delay.
    """
    rows = len(panels)
    units = max(p[1].shape[0] for p in panels)
    width = min(max(6.0, 0.28 * len(t) + 2.5), 22.0)
    fig = _figure((width, 0.9 + rows * (0.5 + 0.03 * units)))
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)
    images: dict[tuple, Any] = {}
    for ax, (name, values, limits) in zip(axes[:, 0], panels, strict=True):
        cmap = "viridis" if limits[0] >= 0 else "RdBu_r"
        image = ax.imshow(values, aspect="auto", interpolation="nearest", cmap=cmap,
                          vmin=limits[0], vmax=limits[1],
                          extent=(t[0] - 0.5, t[-1] + 0.5, values.shape[0] - 0.5, -0.5))
        images.setdefault(limits, (image, []))[1].append(ax)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        ax.set_yticks([])
        if mark is not None:
            ax.axvline(mark[0], color="black", linestyle="--", linewidth=1.2)
        if shade is not None:  # the span's edges, so the heatmap itself stays readable
            for edge in (shade[0] - 0.5, shade[1] + 0.5):
                ax.axvline(edge, color="dimgrey", linestyle=":", linewidth=1.5)
    for (image, owners) in images.values():
        fig.colorbar(image, ax=owners, fraction=0.02, pad=0.01)
    bottom = axes[-1, 0]
    step = max(1, len(t) // 60)  # label at most about 60 steps
    shown = list(range(0, len(t), step))
    bottom.set_xticks([t[i] for i in shown],
                      [f"{t[i]}\n{labels[i]}" for i in shown], fontsize=7)
    bottom.set_xlabel("t, and the input X(t) read at t")
    notes = []
    if mark is not None:
        notes.append(f"dashed line: {mark[1]}")
    if shade is not None:
        notes.append(f"between the dotted lines: {shade[2]}")
    fig.suptitle(title + ("\n" + "; ".join(notes) if notes else ""), fontsize=10)
    return _png(fig)


def probes_png(curve: list[dict[str, Any]], *, title: str, metric: str = "accuracy") -> bytes:
    """probes.png: a linear probe's held-out score of X(t-k) against k, chance as a line."""
    fig = _figure((7, 4))
    ax = fig.subplots()
    ks = [p["k"] for p in curve]
    ax.plot(ks, [p["accuracy"] for p in curve], "o-", label=f"probe {metric} (held-out)")
    ax.plot(ks, [p["chance"] for p in curve], color="grey", linestyle="--",
            label="chance (the most common value)" if metric == "accuracy" else "no memory")
    ax.set(xlabel="k: steps back", ylabel=f"{metric} reading X(t-k) from the state at t",
           ylim=(-0.02, 1.02), title=title)
    ax.set_xticks(ks if len(ks) <= 33 else ks[:: max(1, len(ks) // 16)])
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def lengths_png(by_length: dict[int, dict[str, Any]], *, chance: float, trained: int,
                title: str) -> bytes:
    """lengths.png: held-out accuracy (with its 95% interval) against the sequence length on a
    log axis, the length trained at marked, chance as a line."""
    fig = _figure((7, 4))
    ax = fig.subplots()
    lengths = sorted(by_length)
    acc = [by_length[n]["accuracy"] for n in lengths]
    low = [a - by_length[n]["ci95_low"] for n, a in zip(lengths, acc, strict=True)]
    high = [by_length[n]["ci95_high"] - a for n, a in zip(lengths, acc, strict=True)]
    ax.errorbar(lengths, acc, yerr=[low, high], fmt="o-", capsize=3, label="held-out (95% CI)")
    ax.axhline(chance, color="grey", linestyle="--", label="chance")
    ax.axvline(trained, color="tab:green", linestyle=":", label=f"trained at {trained}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="sequence length T (log scale)", ylabel="accuracy", ylim=(-0.02, 1.02),
           title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def capacity_png(r2: list[float], *, expected: dict[str, list[float]] | None,
                 title: str) -> bytes:
    """capacity.png: r²(k) of the best linear readout of u(t−k) against k; the decay the
    eigenvalues allow, where there are any, over it."""
    fig = _figure((7, 4))
    ax = fig.subplots()
    ks = list(range(1, len(r2) + 1))
    ax.plot(ks, r2, "o-", markersize=3, label="measured r²(k) (held-out)")
    for (label, curve), style in zip((expected or {}).items(), ("--", ":"), strict=False):
        ax.plot(ks, curve, color="tab:green", linestyle=style, label=f"{label} (eigenvalues)")
    ax.set(xlabel="k: steps back", ylabel="r²(k): u(t−k) read from the state at t",
           ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def scaling_png(record: dict[str, Any]) -> bytes:
    """scaling.png: seconds per update against sequence length, log-log, one line per kind and
    backend, with a dotted line of slope 1 (cost linear in the length) for reference."""
    fig = _figure((7, 4.5))
    ax = fig.subplots()
    styles = {"tensorflow": "-", "jax": "--"}
    done = [r for r in record["rows"] if r.get("seconds_per_update")]
    for kind, backend in sorted({(r["kind"], r["backend"]) for r in done}):
        points = sorted((r["length"], r["seconds_per_update"]) for r in done
                        if (r["kind"], r["backend"]) == (kind, backend))
        ax.plot([p[0] for p in points], [p[1] for p in points], "o" + styles.get(backend, ":"),
                label=f"{kind} / {backend}")
    lengths = sorted({r["length"] for r in done})
    if len(lengths) > 1:
        start = min(r["seconds_per_update"] for r in done if r["length"] == lengths[0])
        ax.plot(lengths, [start * n / lengths[0] for n in lengths], ":", color="grey",
                label="linear in the length")
    ax.set(xscale="log", yscale="log", xlabel="sequence length (steps)",
           ylabel="seconds per update (warm)",
           title=f"cost as sequences grow: {record['task']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def seeds_png(record: dict[str, Any]) -> bytes:
    """seeds.png (`bench seeds`): seeds trained per second of wall time against N, one line for
    N seeds as one program and one for N separate runs, one after another."""
    fig = _figure((6.5, 4.2))
    ax = fig.subplots()
    done = [r for r in record["rows"] if not r.get("error")]
    for key, label, style in (("vmapped_seeds_per_second", "one program (train.seeds N)", "o-"),
                              ("separate_seeds_per_second", "N separate runs", "s--")):
        points = [(r["seeds"], r[key]) for r in done if r.get(key)]
        ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
    ax.set(xscale="log", xlabel="seeds N", ylabel="seeds per second of wall time",
           title=f"{record['config']}, {record['epochs']} epochs")
    ax.set_xticks([r["seeds"] for r in done], [str(r["seeds"]) for r in done])
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)
