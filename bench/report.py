"""Printing and saving benchmark results (a table on stdout, JSON under bench/results/)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def table(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[format_value(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(cell[i]) for cell in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(widths[i]) for i, column in enumerate(columns))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell[i].rjust(widths[i]) for i in range(len(columns))) for cell in cells]
    return "\n".join(lines)


def format_value(value: object) -> str:
    """A table cell: thousands separators, floats to two decimals."""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def emit(name: str, rows: list[dict], *, notes: dict | None = None, columns: Sequence[str] | None = None) -> Path:
    """Print the table and write ``bench/results/<name>-<timestamp>.json``; returns the file path."""
    print(f"== {name} ==")
    print(table(rows, columns))
    for key, value in (notes or {}).items():
        print(f"{key}: {format_value(value)}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "name": name,
                "rows": rows,
                "notes": notes or {},
                "machine": platform.platform(),
                "at": time.time(),
                # Other work on the machine skews the figures: the 1-, 5- and 15-minute load when written.
                "loadavg": os.getloadavg(),
            },
            indent=2,
            default=str,
        )
    )
    print(f"results: {path}")
    return path
