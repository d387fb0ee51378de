"""Tables that fit the terminal they are printed on: no figure is ever cut to "0.99…".

    console.print(Fitted(table))                       # as rich lays it out, where it fits
    table.add_column(Breakable("data.lag+data.window", after=".+"))

This module imports nothing from echo_cli.
"""

from __future__ import annotations

import copy
import dataclasses
import re

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text


class Fitted:
    """A table laid out for the width it is printed at, so that no cell is cut to "0.99…".

    Where the table fits, it prints as rich lays it out. Where it fits only with its cells
    wrapped, each column keeps at least the width of its longest word (rich alone would cut
    words short). Narrower still, each row prints as a block: the first `heading` cells as its
    heading (as header=value where `keyed`), then one "column  value" line per non-empty cell.

        console.print(Fitted(table, heading=2, keyed=True))
    """

    def __init__(self, table: Table, *, heading: int = 1, keyed: bool = False):
        self.table, self.heading, self.keyed = table, heading, keyed

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table, pad = self.table, self.table.padding[1] + self.table.padding[3]
        ranges = [[Measurement.get(console, options, cell) for cell in [c.header, *c.cells]]
                  for c in table.columns]
        least = [max(r.minimum for r in rs) + pad for rs in ranges]
        most = [max(r.maximum for r in rs) + pad for rs in ranges]
        room = options.max_width - (2 if table.box and table.show_edge else 0) - (
            len(table.columns) - 1 if table.box else 0)  # less the borders
        if sum(most) <= room:
            yield table
        elif sum(least) <= room:  # the same table, its columns no narrower than their words
            narrowed = copy.copy(table)
            narrowed.columns = [dataclasses.replace(c, width=width - pad) for c, width
                                in zip(table.columns, _shrink(most, least, room), strict=True)]
            yield narrowed
        else:  # the labels as wide as they can be beside each value's longest word
            value = max((r.minimum for rs in ranges[self.heading:] for r in rs[1:]), default=0)
            label = max((rs[0].maximum for rs in ranges[self.heading:]), default=0)
            yield from self._blocks(max(1, min(label, options.max_width - 4 - value)))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def _blocks(self, label: int) -> RenderResult:
        columns = self.table.columns
        if self.table.title:
            yield Text(str(self.table.title), style="table.title")
        for row in zip(*[list(column.cells) for column in columns], strict=True):
            head = Text(", ", style="bold").join(
                Text.assemble(f"{column.header}=" if self.keyed else "", _text(cell))
                for column, cell in zip(columns, row[:self.heading], strict=False))
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="dim", overflow="fold", width=label)
            grid.add_column(overflow="fold")
            for column, cell in zip(columns[self.heading:], row[self.heading:], strict=True):
                if _text(cell).plain.strip():
                    grid.add_row(_text(column.header), cell)
            yield from (Text(""), head, Padding(grid, (0, 0, 0, 2), expand=False))


def _text(cell: RenderableType) -> Text:
    return cell if isinstance(cell, Text) else Text(str(cell))


def _shrink(widths: list[int], least: list[int], room: int) -> list[int]:
    """widths cut to sum to room, a column at a time from the widest, none below its least
    (as rich narrows a table, but never cutting a word); sum(least) <= room."""
    widths = list(widths)
    for _ in range(sum(widths) - room):
        i = max((i for i in range(len(widths)) if widths[i] > least[i]), key=widths.__getitem__)
        widths[i] -= 1
    return widths


class Breakable(Text):
    """A cell that may wrap after a comma (or each of `after`) as well as at a space, so that
    its column can be narrower than the cell: a run's name lag=1,units=32,seed=1, or a config
    key data.window as a header (after=".")."""

    def __init__(self, text: str, *, after: str = ","):
        super().__init__(text)
        self.after = after

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        marks = re.escape(self.after)  # the words, broken after each mark: lag=1, seed=2
        pieces = re.findall(rf"[^\s{marks}]*[{marks}]|[^\s{marks}]+", self.plain)
        return Measurement(max(map(cell_len, pieces), default=0),
                           super().__rich_measure__(console, options).maximum)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        breaks, start, mark = [], 0, None
        for i, ch in enumerate(self.plain):  # a break after the last mark of a word too wide
            if ch.isspace():
                start, mark = i + 1, None
                continue
            if i - start >= options.max_width and mark is not None:
                breaks.append(mark)
                start, mark = mark, None
            if ch in self.after:
                mark = i + 1
        text = Text("\n").join(self.divide(breaks)) if breaks else self
        yield from Text.__rich_console__(text, console, options)
