"""Small helpers shared by the benchmark scripts: work folders, start-up checks, tables, charts."""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from typing import Iterable

import psutil

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "_work"
#: the demo's entry script and data helpers (examples/mnist), importable by the benchmarks
SCRIPT_DIR = ROOT / "examples" / "mnist"
sys.path.insert(0, str(SCRIPT_DIR))


def compile_sources() -> None:
    """Write the bytecode of parallelrun's and the examples' modules, as installing a package
    does. An editable checkout run with PYTHONDONTWRITEBYTECODE set (sandboxes and CI images
    set it) has none, and every worker process would compile parallelrun's modules again
    (~3% of a worker's CPU on the images job), a cost no installed copy pays."""
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "parallelrun"), quiet=1)
    # not bench/_work, which holds folders of a million files
    for folder in (SCRIPT_DIR, ROOT / "bench"):
        compileall.compile_dir(str(folder), maxlevels=0, quiet=1)


compile_sources()


def init_demo_script(model_dir: str):
    """The demo's entry script imported and its init() called in this process, as a worker
    would (the model's folder in AZUREML_MODEL_DIR): what the hand-written baselines run."""
    os.environ["AZUREML_MODEL_DIR"] = model_dir
    import digit_identification

    digit_identification.init()
    return digit_identification


# the extra that installs each optional module a benchmark imports (None: not an extra)
_EXTRA_OF_MODULE = {"matplotlib": "bench", "ray": "bench", "sklearn": "bench", "PIL": "bench",
                    "adlfs": "azure", "fastapi": "ui", "uvicorn": "ui", "torch": None}


def write_script(folder: Path, text: str, name: str = "score.py") -> Path:
    """``folder/name`` holding ``text``, rewritten only when it differs, and then whole at once
    (a temporary file renamed): the baselines' child processes import the script while a
    sibling may be making sure of it, and must never read it half written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists() or path.read_text() != text:
        temporary = folder / f".{name}.{os.getpid()}.tmp"
        temporary.write_text(text)
        os.replace(temporary, path)
    return folder


def require(*modules: str) -> None:
    """Stop at start, naming the command that installs them, when a module this benchmark
    imports later is missing: a missing chart library found after minutes of measuring loses
    the measurements."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    extras = sorted({_EXTRA_OF_MODULE[m] for m in missing if _EXTRA_OF_MODULE.get(m)})
    script = Path(sys.argv[0]).name
    lines = [f"{script} needs {', '.join(missing)}, which this Python "
             f"({sys.executable}) does not have."]
    if extras:
        lines.append(f"Install the benchmarks' extras: `make bench` (it installs them and runs every "
                     f"benchmark), or `pip install -e '.[{','.join(extras)}]'` and run this again.")
    if "torch" in missing:
        lines.append("torch is not an extra of parallelrun: install the build for your CUDA "
                     "(https://pytorch.org/get-started/locally/).")
    sys.exit("\n".join(lines))


def image_set(count: int, processes: int = 2) -> Path:
    """A folder of ``count`` PNG digits (``images/NNNNNN.png`` and ``labels.csv``, as
    examples/mnist/mnist_data.make_images writes them), made once per count in
    ``processes`` processes: 480,000 images take ~5 minutes of CPU, which a 16-core run must
    not spend on one core. Kept if complete (``labels.csv`` is written last)."""
    import csv
    from multiprocessing import get_context

    folder = WORK / f"mnist_{count}"
    labels_path = folder / "labels.csv"
    if labels_path.exists():
        with open(labels_path) as fh:
            if sum(1 for _ in fh) == count + 1:
                return folder
    (folder / "images").mkdir(parents=True, exist_ok=True)
    step = -(-count // max(1, processes))
    parts = [(str(folder), lo, min(count, lo + step)) for lo in range(0, count, step)]
    with get_context("spawn").Pool(max(1, min(processes, len(parts)))) as pool:
        labels = [label for part in pool.starmap(_image_part, parts) for label in part]
    with open(labels_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label"])
        writer.writerows((f"{n:06d}.png", label) for n, label in enumerate(labels))
    return folder


def _image_part(folder: str, first: int, end: int) -> list[int]:
    """Images ``first`` to ``end - 1`` of :func:`image_set` (the demo's digits, each shifted
    and given noise from a generator seeded by ``first``); their labels."""
    import numpy as np
    from mnist_data import _upscaled_digits, _varied
    from PIL import Image

    base, targets = _upscaled_digits()
    rng = np.random.default_rng(first)
    labels = []
    for n in range(first, end):
        i = n % len(base)
        Image.fromarray(_varied(base[i], rng)).save(Path(folder) / "images" / f"{n:06d}.png",
                                                    optimize=False, compress_level=1)
        labels.append(int(targets[i]))
    return labels


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    """``--workers N`` (default 2) and ``--json PATH``: what bench_cores.py runs each bound
    benchmark with."""
    parser.add_argument("--workers", type=int, default=2,
                        help="workers of every contender: parallelrun's processes, Pool(N), "
                             "the bound's processes (default 2)")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the best figures of each runner there (bench_cores.py "
                             "reads them)")


def results_entry(workload: str, workers: int, items: int, unit: str,
                  runners: list[dict]) -> dict:
    """One workload's best figures for :func:`write_results`: ``runners`` is
    ``[{"name", "kind", "seconds", "steady", ...}]``, kind one of "local", "ray", "pool",
    "ray-data", "bound" (one per workload: the others are fractions of it)."""
    keep = ("name", "kind", "seconds", "steady", "batch_size")
    return {"workload": workload, "workers": workers, "items": items, "unit": unit,
            "runners": [{k: r[k] for k in keep if k in r} for r in runners]}


def write_results(path: str | None, entries: list[dict]) -> None:
    """The figures bench_cores.py summarises (:func:`results_entry`), as JSON at ``path``
    (nothing when None)."""
    if path is not None:
        import json

        Path(path).write_text(json.dumps({"workloads": entries}, indent=1))


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


#: the committed charts that bench/README.md shows; a run writes there only when asked
RESULTS = ROOT / "bench" / "results"
#: where charts go by default: under bench/_work/, which git ignores
DEFAULT_CHARTS = WORK / "charts"
#: an environment variable naming the charts' folder (what --charts overrides)
CHARTS_ENV = "PARALLELRUN_BENCH_CHARTS"
_charts_dir: Path | None = None


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args()`` with the ``--charts DIR`` option of every benchmark that draws a
    chart; its value (else $PARALLELRUN_BENCH_CHARTS, else bench/_work/charts) is where
    :func:`bar_chart` writes."""
    parser.add_argument(
        "--charts", metavar="DIR", default=None,
        help=f"folder for the chart (default: ${CHARTS_ENV}, else "
             f"{DEFAULT_CHARTS.relative_to(ROOT)}, "
             f"which git ignores; --charts {RESULTS.relative_to(ROOT)} replaces the committed ones)")
    args = parser.parse_args(argv)
    global _charts_dir
    _charts_dir = Path(args.charts or os.environ.get(CHARTS_ENV) or DEFAULT_CHARTS)
    return args


def charts_dir() -> Path:
    """The folder :func:`bar_chart` writes to (see :func:`parse_args`)."""
    return _charts_dir or Path(os.environ.get(CHARTS_ENV) or DEFAULT_CHARTS)


def bar_chart(name: str, title: str, bars: dict[str, float], unit: str,
              baseline: str | None = None, ours: Iterable[str] | None = None) -> Path:
    """A horizontal bar chart of one measure per contender, saved as ``<name>.png`` in
    :func:`charts_dir` (``--charts bench/results`` for bench/README.md): parallelrun's bars (``ours``; default: the labels starting with
    "parallelrun") in blue, the others grey; ``baseline`` names the bar the others are compared
    with (its value is drawn as a dashed line)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: draw to a file
    import matplotlib.pyplot as plt

    folder = charts_dir()
    folder.mkdir(parents=True, exist_ok=True)
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
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"chart: {path}", flush=True)
    return path


# The bound: what no engine can beat on this machine --------------------------------------------
#: issue 20's targets, as fractions of the bound (whole job: start-up included; steady: between
#: 10% and 90% of the items done)
TARGETS = {"local": {"whole": 0.90, "steady": 0.95}, "ray": {"whole": 0.75, "steady": 0.85}}


class Timeline:
    """Items done over time, fed as they come: the whole job's seconds, the seconds to the
    first items, and the steady rate between 10% and 90% of ``total`` (start-up and the last
    stragglers left out). ``stats()`` names the count ``unit`` ("rows", "images")."""

    def __init__(self, t0: float, total: int, unit: str = "items"):
        self.t0, self.total, self.unit, self.done = t0, total, unit, 0
        self.first: float | None = None              # seconds to the first items done
        self.marks: list[tuple[float, int]] = []   # (time, items done) at 10% and at 90%

    def add(self, items: int, now: float | None = None) -> None:
        now = now or time.perf_counter()
        if self.first is None:
            self.first = now - self.t0
        self.done += items
        if len(self.marks) < 2 and self.done >= self.total * (0.1, 0.9)[len(self.marks)]:
            self.marks.append((now, self.done))

    def stats(self, end: float | None = None) -> dict:
        (t10, done10), (t90, done90) = self.marks
        seconds = (end or time.perf_counter()) - self.t0
        return {"seconds": seconds, self.unit: self.done, "first": self.first,
                "steady": (done90 - done10) / (t90 - t10)}


def steady_rate(done: list[tuple[float, int]]) -> float:
    """Items per second between the moments 10% and 90% of the items were done, from
    ``(time, items)`` completions in any order: start-up and the last stragglers left out."""
    done = sorted(done)
    total = sum(items for _, items in done)
    marks, count = [], 0
    for when, items in done:
        count += items
        while len(marks) < 2 and count >= total * (0.1, 0.9)[len(marks)]:
            marks.append((when, count))
    (t10, n10), (t90, n90) = marks
    return (n90 - n10) / (t90 - t10) if t90 > t10 else float("inf")


def tries_completions(log_dir) -> list[tuple[float, int]]:
    """When each mini-batch of a parallelrun job was done, from the job's machine records
    (``sys/job_report/tries.jsonl``: the coordinator's wall clock when it took the outcome)."""
    import json

    with open(Path(log_dir) / "sys" / "job_report" / "tries.jsonl") as fh:
        return [(r["finished_at"], r["succeeded"]) for r in map(json.loads, fh)
                if r["status"] == "RUN_DONE"]


#: one process of the bound: a fresh interpreter that imports the entry script, calls init(),
#: then run() over its mini-batches (a JSON file), writing the lines to its output file and,
#: at the end, when each mini-batch was done
_BOUND_PROCESS = """
import importlib.util, json, os, sys, time
script, share, out = sys.argv[1:4]
chunks = json.load(open(share))
sys.path.insert(0, os.path.dirname(script))
spec = importlib.util.spec_from_file_location(os.path.basename(script)[:-3], script)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.init()
done = []
with open(out, "w") as fh:
    for chunk in chunks:
        lines = module.run(chunk)
        fh.write("\\n".join(map(str, lines)) + "\\n")
        done.append((time.time(), len(lines)))
with open(out + ".times", "w") as fh:
    json.dump(done, fh)
"""


def bound_job(script: str, chunks: list, processes: int, out: str,
              env: dict[str, str] | None = None) -> dict:
    """The bound of any engine on this machine: ``processes`` fresh interpreters, each
    importing the entry script, calling init() once and then run() over its share of the
    pre-cut mini-batches (every ``processes``-th) in a plain loop, results written to a file of
    its own: no coordinator, no messages. Each leads a session of its own and gets the thread
    settings parallelrun's local workers get (a kernel with autogroup shares the CPU between
    sessions; numeric libraries' thread pools would oversubscribe the cores). ``seconds``
    counts from the start (interpreters, imports, init() included) to the last mini-batch
    done; ``steady`` is items/s between 10% and 90% done; ``first``: the first one done."""
    import json
    import subprocess

    threads = str(max(1, (os.cpu_count() or 1) // processes))
    child_env = {**{v: threads for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                         "MKL_NUM_THREADS")}, **os.environ, **(env or {})}
    shares = []
    for k in range(processes):  # cut before the clock starts: the bound's mini-batches are given
        Path(f"{out}.{k}.json").write_text(json.dumps(chunks[k::processes]))
        shares.append((f"{out}.{k}.json", f"{out}.{k}"))
    started = time.time()
    children = [subprocess.Popen([sys.executable, "-c", _BOUND_PROCESS, script, share, share_out],
                                 env=child_env, start_new_session=True)
                for share, share_out in shares]
    for child in children:
        if child.wait() != 0:
            raise RuntimeError(f"a bound process of {script} exited with {child.returncode}")
    done = [tuple(mark) for _, share_out in shares
            for mark in json.loads(Path(f"{share_out}.times").read_text())]
    return {"seconds": max(when for when, _ in done) - started, "steady": steady_rate(done),
            "items": sum(items for _, items in done), "first": min(when for when, _ in done) - started}


def of_bound(value: float, bound: float) -> str:
    return f"{value / bound:.2f}"


def target_rows(measures: list[tuple[str, float, float]]) -> list[list[str]]:
    """Rows ``[measure, fraction of the bound, target, met]`` for :func:`table`, from
    ``(measure, fraction, target)``."""
    return [[name, f"{fraction:.2f}", f">= {target:.2f}", "met" if fraction >= target else "NOT met"]
            for name, fraction, target in measures]
