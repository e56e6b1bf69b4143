"""Small helpers shared by the benchmark scripts: work folders, timing, tables."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work"
sys.path.insert(0, str(ROOT / "examples" / "mnist"))


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def table(title: str, header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table, printed and returned (paste it into bench/README.md)."""
    cells = [header] + [[f"{c:,.1f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [f"### {title}", f"_{machine()}_", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text
