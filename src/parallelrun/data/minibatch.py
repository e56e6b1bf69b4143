"""The unit of work: one mini-batch, as planned by a dataset and sent to a worker."""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple, Protocol

#: what ``run()`` receives for a table's mini-batch, chosen by the entry script's module-level
#: ``MINI_BATCH_FORMAT`` (the default is Azure ML's: a pandas DataFrame); file mini-batches are
#: lists of paths whatever it says
MINI_BATCH_FORMATS = ("pandas", "pyarrow")


class Loaded(NamedTuple):
    """What reading a payload gave the worker: ``run()``'s argument, and the rows the reader
    left out of it (bad rows: counted as failed records, and their file and line, for the
    error logs). A value returned to the worker, never kept on the payload."""

    data: Any
    failed_rows: int = 0
    failed_rows_report: str | None = None


class Payload(Protocol):
    """What travels to a worker: everything the worker, the scheduler and :class:`MiniBatch` read
    from it. Payloads are immutable: reading one returns what it found (:class:`Loaded`).

    ``read`` runs in the worker and gives ``run()`` its argument in ``mini_batch_format`` (one
    of :data:`MINI_BATCH_FORMATS`; payloads of files ignore it); ``load()`` is the same argument
    in the default format, without the bad rows' account. ``prefetch()`` is called as soon as the
    mini-batch is queued in the worker, so remote data can download while earlier mini-batches
    run (it may do nothing). ``names()`` lists the items (paths, URLs); a table's payload has
    none (its mini-batch's label, file and range, names it).
    ``rows_hint`` is the planner's count of rows (0 when unknown, or for files): what a try that
    never reports counts as failed. ``partition_key_value`` is the partition's key, or None.

    Only ``load()`` is required: :func:`read`, :func:`rows_hint`, :func:`partition_key_value`,
    :func:`prefetch` and :class:`MiniBatch` give a payload without the others the defaults above
    (no bad rows, 0, None, nothing, the label). They are the one place that asks.
    """

    rows_hint: int
    partition_key_value: dict | None

    def load(self) -> Any: ...

    def read(self, mini_batch_format: str = "pandas") -> Loaded: ...

    def prefetch(self) -> None: ...

    def names(self) -> list[str]: ...


def read(payload: Payload, mini_batch_format: str = "pandas") -> Loaded:
    """Read a payload in the worker (``payload.read``, or ``load()`` for one without it)."""
    reader = getattr(payload, "read", None)   # optional member: see Payload
    return reader(mini_batch_format) if reader is not None else Loaded(payload.load())


def rows_hint(payload: Payload) -> int:
    """The planner's count of a payload's rows, 0 when it has none (see :class:`Payload`)."""
    return getattr(payload, "rows_hint", 0)   # optional member: see Payload


def partition_key_value(payload: Payload) -> dict | None:
    """A payload's partition key, None when it has none (see :class:`Payload`)."""
    return getattr(payload, "partition_key_value", None)   # optional member: see Payload


def prefetch(minibatches: "list[MiniBatch]") -> None:
    """Let queued mini-batches start fetching their data (payloads without ``prefetch()`` and
    prefetch errors are ignored: ``load()`` fetches and reports)."""
    for minibatch in minibatches:
        hint = getattr(minibatch.payload, "prefetch", None)   # optional member: see Payload
        if hint is not None:
            try:
                hint()
            except Exception:  # noqa: BLE001 - load() will fetch again and report the error
                pass


class MiniBatch:
    """One mini-batch: its position in the plan, its item count when known, and its payload.

    ``index`` is the mini-batch's place in the deterministic plan of the job's inputs; journal,
    resume and exactly-once output all key on it. ``items`` is the number of files for file
    datasets and None for tables (rows are counted by the worker that reads them).
    """

    __slots__ = ("index", "items", "payload", "label")

    def __init__(self, index: int, items: int | None, payload: Payload, label: str):
        self.index = index
        self.items = items
        self.payload = payload
        self.label = label

    def __repr__(self) -> str:
        return f"MiniBatch({self.index}, items={self.items}, {self.label})"

    def digest(self) -> str:
        """A short checksum of what it holds (its paths or URLs, else its label: a table's file
        and range, a partition's key): the journal keeps it, and a resumed job's plan must match.
        """
        names = getattr(self.payload, "names", None)   # optional member: see Payload
        text = "\0".join(names()) if names is not None else self.label
        return f"{zlib.crc32(text.encode('utf-8', 'surrogateescape')):08x}"

    def item_names(self, limit: int = 20) -> str:
        """Its items for a person reading a failure: paths or URLs (the first ``limit`` and
        how many more) when the payload lists them, else the label (a table's file and range)."""
        names = getattr(self.payload, "names", None)   # optional member: see Payload
        listed = names() if names is not None else [self.label]
        more = f" (+{len(listed) - limit} more)" if len(listed) > limit else ""
        return ", ".join(listed[:limit]) + more


class FileList:
    """Payload of a file mini-batch: local paths, handed to ``run()`` as a list of str."""

    __slots__ = ("paths",)
    rows_hint = 0
    partition_key_value = None

    def __init__(self, paths: list[str]):
        self.paths = paths

    def load(self) -> list[str]:
        return list(self.paths)

    def read(self, mini_batch_format: str = "pandas") -> Loaded:
        return Loaded(self.load())

    def prefetch(self) -> None:
        """Local files: nothing to fetch."""

    def names(self) -> list[str]:
        return self.paths

    def __getstate__(self):
        return self.paths

    def __setstate__(self, state):
        self.paths = state
