"""Items per second over time, for a step's chart.

Two sources, merged by time:

* the step's progress samples, ``sys/progress.jsonl`` (engine/logs.py: ``PROGRESS_FILE``), one
  JSON object every 5 s written by the engine (the whole history, also of runs that ended before
  the dashboard started); read from where the last request stopped, never from the start again.
  (The overview text files people read beside it are not parsed; log folders written before
  the samples existed show live samples only);
* samples of the catalog's live counts taken whenever the dashboard looks at a running step
  (about once a second while a page watches it), which fill in between recorded samples (and
  stay, in memory, for as long as the dashboard runs).

The series is thinned to at most :data:`MAX_POINTS` points; the rate at each point is the
change in items done since the previous point over the time between them.

Example::

    history = Throughput(log_dir)
    history.add_sample(time.time(), items_done=120, minibatches_done=12)
    series = history.series(started_at=step["started_at"])
"""

from __future__ import annotations

import array
import bisect
import json
import os
import threading

from parallelrun.engine.logs import PROGRESS_FILE

MAX_POINTS = 240
SCAN_BYTES = 4 * 1024 * 1024


def sample_of(line: bytes | str) -> tuple[float, int, int] | None:
    """(time, mini-batches done, items done) of one progress record line, or None."""
    try:
        record = json.loads(line)
        return (float(record["time"]), int(record["minibatches_done"]),
                int(record["items_succeeded"]) + int(record["items_failed"]))
    except (ValueError, KeyError, TypeError):
        return None   # a line cut short by a full disk, or not a record


class Throughput:
    """The samples of one step (see the module doc)."""

    def __init__(self, log_dir: str | None):
        self.log_dir = log_dir
        self._lock = threading.Lock()
        self._read_to = 0
        self._times = array.array("d")
        self._items = array.array("q")
        self._batches = array.array("q")
        self._live: list[tuple[float, int, int]] = []

    def _read_samples(self) -> None:
        if not self.log_dir:
            return
        path = os.path.join(self.log_dir, *PROGRESS_FILE.split("/"))
        try:
            if os.path.islink(path):
                return
            size = os.path.getsize(path)
            if size < self._read_to:   # a new job in the same folder: start again
                self._read_to = 0
                del self._times[:], self._batches[:], self._items[:]
            if size <= self._read_to:
                return
            with open(path, "rb") as fh:
                fh.seek(self._read_to)
                data = fh.read(min(SCAN_BYTES, size - self._read_to))
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self._read_to += end
        for line in data[:end].splitlines():
            sample = sample_of(line)
            if sample is not None:
                self._insert(*sample)

    def _insert(self, when: float, batches: int, items: int) -> None:
        if self._times and when < self._times[-1]:
            at = bisect.bisect(self._times, when)
            self._times.insert(at, when)
            self._batches.insert(at, batches)
            self._items.insert(at, items)
        else:
            self._times.append(when)
            self._batches.append(batches)
            self._items.append(items)

    def add_sample(self, when: float, items_done: int, minibatches_done: int) -> None:
        """A live reading of the counts (kept until recorded samples cover its time)."""
        with self._lock:
            if self._live and self._live[-1][1:] == (minibatches_done, items_done) and \
                    when - self._live[-1][0] < 30:
                return  # nothing moved: the previous sample already says so
            self._live.append((when, minibatches_done, items_done))
            del self._live[:-2000]

    def series(self, started_at: float | None = None, finished_at: float | None = None) -> dict:
        """``{"points": [{"t", "items", "minibatches", "rate"}...], ...}`` ordered by time."""
        with self._lock:
            self._read_samples()
            points = list(zip(self._times, self._batches, self._items))
            live = list(self._live)
        if live:
            # live samples fill the gaps between recorded samples (written every 5 s); next to a
            # recorded sample they would only add the jitter of two clocks
            times = [p[0] for p in points]
            for sample in live:
                at = bisect.bisect(times, sample[0])
                near = [times[i] for i in (at - 1, at) if 0 <= i < len(times)]
                if all(abs(sample[0] - t) >= 1.0 for t in near):
                    points.append(sample)
        points.sort()
        if started_at and (not points or points[0][0] > started_at):
            points.insert(0, (started_at, 0, 0))
        if finished_at:
            points = [p for p in points if p[0] <= finished_at + 5]
        if len(points) > MAX_POINTS:
            step = len(points) / MAX_POINTS
            keep = [points[int(i * step)] for i in range(MAX_POINTS - 1)] + [points[-1]]
            points = keep
        result = []
        previous = None
        for when, batches, items in points:
            rate = 0.0
            if previous is not None and when > previous[0]:
                rate = max(0.0, (items - previous[2]) / (when - previous[0]))
            result.append({"t": round(when, 3), "items": items, "minibatches": batches,
                           "rate": round(rate, 3)})
            previous = (when, batches, items)
        return {"points": result, "sources": {"overview_lines": len(self._times),
                                              "live_samples": len(self._live)}}


class ThroughputCache:
    """One Throughput per step run id, the most recently used kept."""

    def __init__(self, size: int = 64):
        self.size = size
        self._items: dict[str, Throughput] = {}
        self._lock = threading.Lock()

    def get(self, step_id: str, log_dir: str | None) -> Throughput:
        with self._lock:
            found = self._items.pop(step_id, None)
            if found is None or found.log_dir != log_dir:
                found = Throughput(log_dir)
            self._items[step_id] = found
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))
            return found
