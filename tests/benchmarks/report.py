"""How the benchmarks print: tables whose columns never run together, and a target and
a verdict beside every ratio that has a target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

GAP: Final = "  "


def verdict(ratio: float | None, target: float) -> str:
    """`pass` when the ratio meets its target (at most `target`), else `FAIL`."""
    if ratio is None:
        return "-"
    return "pass" if ratio <= target else "FAIL"


def at_most(target: float) -> str:
    return f"<= {target:.2f}x"


@dataclass
class Table:
    """Rows of cells, printed with every column as wide as its widest cell and two
    spaces between columns; the first column is left-aligned, the others right."""

    headers: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"{len(cells)} cells for {len(self.headers)} columns")
        self.rows.append(cells)

    def render(self, indent: str = "") -> str:
        lines = [self.headers, *self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(self.headers))]
        return "\n".join(
            indent
            + GAP.join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
            for line in lines
        )
