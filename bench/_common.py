"""Small helpers shared by the benchmark scripts: work folders, timing, tables."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Iterable

import psutil

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work"
#: the demo's entry script and data helpers (examples/mnist), importable by the benchmarks
SCRIPT_DIR = ROOT / "examples" / "mnist"
sys.path.insert(0, str(SCRIPT_DIR))


def init_demo_script(model_dir: str):
    """The demo's entry script imported and its init() called in this process, as a worker
    would (the model's folder in AZUREML_MODEL_DIR): what the hand-written baselines run."""
    os.environ["AZUREML_MODEL_DIR"] = model_dir
    import digit_identification

    digit_identification.init()
    return digit_identification


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


RESULTS = ROOT / "bench" / "results"


def bar_chart(name: str, title: str, bars: dict[str, float], unit: str,
              baseline: str | None = None, ours: Iterable[str] | None = None) -> Path:
    """A horizontal bar chart of one measure per contender, saved as ``bench/results/<name>.png``
    for bench/README.md: parallelrun's bars (``ours``; default: the labels starting with
    "parallelrun") in blue, the others grey; ``baseline`` names the bar the others are compared
    with (its value is drawn as a dashed line)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: draw to a file
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    labels, values = list(bars), [float(v) for v in bars.values()]
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(labels) + 1.3))
    ours = set(ours) if ours is not None else {b for b in labels if b.startswith("parallelrun")}
    colors = ["#2f6fde" if label in ours else "#9aa5b1" for label in labels]
    ax.barh(labels[::-1], values[::-1], color=colors[::-1])
    for y, value in enumerate(values[::-1]):
        ax.text(value, y, f" {value:,.0f}" if value >= 100 else f" {value:,.2f}", va="center")
    if baseline in bars:
        ax.axvline(bars[baseline], color="#555", linestyle="--", linewidth=1)
    ax.set_xlabel(unit)
    fig.suptitle(title, fontsize=10)  # over the whole figure: long bar labels push the axes
    ax.set_xlim(0, max(values) * 1.3 if values and max(values) > 0 else 1)  # room for labels
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"chart: {path.relative_to(ROOT)}", flush=True)
    return path
