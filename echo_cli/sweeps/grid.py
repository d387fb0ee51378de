"""A sweep's grid: `--grid KEY=V1,V2,...` parsed, checked, and expanded into points.

    grid = parse_grid(["model.kind=lstm,mlp", "data.lag+data.window=1:5,2:6"])
    points = expand(grid, seeds=3, base_seed=1)      # 2 x 2 x 3 = 12 Points
    points[0].name, points[0].overrides()            # a run directory name, --set items
    expand(grid, seeds=3, base_seed=1, together=lambda values: True)  # 4 Points of 3 seeds

Values are read as YAML, the way --set reads them; tied keys move together. This module
imports no TensorFlow.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from echo_cli.config.yamlio import describe_error, parse_yaml
from echo_cli.errors import EchoError


class SweepError(EchoError, ValueError):
    """A sweep that cannot start. The message is one line, ready to print."""


@dataclass(frozen=True)
class Point:
    """One run of the sweep: the swept values and a seed, or `seeds` seeds from it trained as
    one program (train.seeds)."""

    values: tuple[tuple[str, Any], ...]
    seed: int
    seeds: int = 1

    @property
    def name(self) -> str:
        """The run's directory name: key=value pairs, long values shortened with a hash (the
        full values are in the run's config.yaml)."""
        parts = [f"{key.split('.')[-1]}={_short(str(value), 40)}" for key, value in self.values]
        seed = (f"seed={self.seed}" if self.seeds == 1
                else f"seeds={self.seed}-{self.seed + self.seeds - 1}")
        name = re.sub(r"[^A-Za-z0-9_.=,~-]", "_", ",".join([*parts, seed]))
        return _short(name, MAX_NAME)

    def overrides(self) -> list[str]:
        """`--set` items; JSON is valid YAML, so every value reads back as it was swept."""
        return [*(f"{k}={json.dumps(v)}" for k, v in self.values), f"seed={self.seed}",
                *([f"train.seeds={self.seeds}"] if self.seeds > 1 else [])]

    def each_seed(self) -> list[Point]:
        """The point of each of its seeds, as a sweep of one seed at a time names them."""
        return [Point(self.values, seed) for seed in range(self.seed, self.seed + self.seeds)]


MAX_NAME = 180  # bytes of a run directory's name; filesystems allow 255


def _short(text: str, limit: int) -> str:
    """text, or its start and a hash of the whole when longer than limit."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return f"{text[: limit - 11]}~{digest}"


def parse_grid(items: list[str], *, required: bool = False) -> list[tuple[str, list[Any]]]:
    """`KEY=V1,V2,...` strings to (key, values), each value parsed as a YAML scalar.

    Keys joined by `+` move together, their values joined by `:`, e.g.
    `data.lag+data.window=1:5,2:6` tries (lag 1, window 5) and (lag 2, window 6).

    Raises:
        SweepError: no `=`, an empty key or value list, an unknown key, a key given twice,
            tied values that do not match their keys, or no grid when one is required.
    """
    grid: list[tuple[str, list[Any]]] = []
    for item in items:
        grid.append(_axis(item, grid))
    if required and not grid:
        raise SweepError("give at least one --grid KEY=V1,V2,..., e.g. --grid data.lag=1,2,4")
    _check_known(grid_keys(grid))
    return grid


def _axis(item: str, grid: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """One --grid item as (key, values), checked against the axes before it."""
    from echo_cli.config.loading import clip, cut

    key, sep, text = item.partition("=")
    key = key.strip()
    values = [v.strip() for v in text.split(",")]
    if not sep or not key or not any(values):
        raise SweepError(f"--grid expects KEY=V1,V2,..., e.g. data.lag=1,2,4, got {cut(item)}")
    if not all(values):
        raise SweepError(f"--grid {clip(key)} has an empty value in {cut(text)}; remove the "
                         f"extra comma")
    tied = [k.strip() for k in key.split("+")]
    for i, k in enumerate(tied):
        if k in ("seed", "train.seeds"):
            raise SweepError(f"--grid {k} is not allowed: use --seeds N for seeds")
        if k == "name":
            raise SweepError("--grid name is not allowed: each run is named after its grid "
                             "values")
        if k in grid_keys(grid) or k in tied[:i]:
            raise SweepError(f"--grid sets {k} twice; list all its values in one --grid")
    key = "+".join(tied)
    if len(tied) == 1:
        return key, [_value(key, v) for v in values]
    parts = [v.split(":") for v in values]
    if any(len(p) != len(tied) for p in parts):
        raise SweepError(f"--grid {key} ties {len(tied)} keys, so each value needs "
                         f"{len(tied)} parts joined by ':', e.g. 1:5, got {text!r}")
    return key, [[_value(key, x) for x in p] for p in parts]


def _check_known(keys: list[str]) -> None:
    """Every key must hold a value: not a section, not a typo."""
    from echo_cli.config.loading import clip, leaf_keys, suggest_key

    leaves = leaf_keys()
    for key in keys:
        if key in leaves:
            continue
        example = next((k for k in leaves if k.startswith(key + ".")), None)
        if example:
            raise SweepError(f"--grid {key} is a section, not a key; give a key inside it, "
                             f"such as {example}")
        raise SweepError(f"--grid {clip(key)} is not a known key; {suggest_key(key)}")


def _value(key: str, text: str) -> Any:
    """One grid value, read as YAML the way --set reads it."""
    from echo_cli.config.loading import clip, cut

    try:
        return parse_yaml(text)
    except yaml.YAMLError as err:
        raise SweepError(f"--grid {clip(key)}: {cut(text)} is not a valid YAML value"
                         f"{describe_error(err)}") from None


MAX_RUNS = 10_000  # a sweep larger than this is a mistake: split it


def count_runs(grid: list[tuple[str, list[Any]]], seeds: int) -> int:
    """Runs a grid makes: the product of its value counts, times the seeds."""
    total = seeds
    for _, values in grid:
        total *= len(values)
    return total


def check_size(grid: list[tuple[str, list[Any]]], *, seeds: int, base_seed: int,
               overrides: list[str]) -> None:
    """Refuse a sweep too large to run, seeds past the seed range, or a --set that a --grid
    key would silently replace.

    Raises:
        SweepError: one line naming the problem.
    """
    runs = count_runs(grid, seeds)
    if runs > MAX_RUNS:
        raise SweepError(f"the grid and --seeds make {runs:,} runs; a sweep holds at most "
                         f"{MAX_RUNS:,}: use fewer values, or split it into sweeps")
    if base_seed + seeds - 1 > 2**32 - 1:
        raise SweepError(f"--seeds {seeds} from seed {base_seed} reaches past 2**32 - 1; give "
                         f"fewer seeds or a lower seed")
    set_keys = {item.partition("=")[0].strip() for item in overrides}
    if "train.seeds" in set_keys:
        raise SweepError("--set train.seeds: a sweep's seeds are --seeds N (trained as one "
                         "program per grid point where the engine allows)")
    for key in grid_keys(grid):
        if key in set_keys:
            raise SweepError(f"--set {key} and --grid {key} both set it; the grid would "
                             f"replace it in every run, so drop one")


def check_points(points: list[Point]) -> None:
    """Every run needs a directory of its own.

    Raises:
        SweepError: two points with the same name (a value listed twice, say).
    """
    seen: dict[str, Point] = {}
    for point in points:
        if point.name in seen:
            raise SweepError(f"two runs would share the name {point.name}: a value is listed "
                             f"twice (or two values differ only in characters that names drop)")
        seen[point.name] = point


def grid_keys(grid: list[tuple[str, list[Any]]]) -> list[str]:
    """Every config key the grid sets, tied keys split."""
    return [k for key, _ in grid for k in key.split("+")]


def expand(grid: list[tuple[str, list[Any]]], *, seeds: int, base_seed: int,
           together: Callable[[tuple[tuple[str, Any], ...]], bool] | None = None) -> list[Point]:
    """The cartesian product of the grid, times `seeds` seeds from base_seed up: one Point per
    seed, or, where together(values) says so, one Point whose seeds train as one program."""
    points = []
    for combo in itertools.product(*[values for _, values in grid]):
        values: list[tuple[str, Any]] = []
        for (key, _), value in zip(grid, combo, strict=True):
            keys = key.split("+")
            values.extend(zip(keys, value if len(keys) > 1 else [value], strict=True))
        if seeds > 1 and together is not None and together(tuple(values)):
            points.append(Point(values=tuple(values), seed=base_seed, seeds=seeds))
            continue
        for s in range(seeds):
            points.append(Point(values=tuple(values), seed=base_seed + s))
    return points
