"""The unit of work: one mini-batch, as planned by a dataset and sent to a worker."""

from __future__ import annotations

import zlib
from typing import Any, Protocol


class Payload(Protocol):
    """What travels to a worker; ``load()`` runs there and gives ``run()`` its argument.

    A payload may also have ``prefetch()``: the worker calls it as soon as the mini-batch is
    queued there, so remote data can download while earlier mini-batches run.
    """

    def load(self) -> Any: ...


def prefetch(minibatches: "list[MiniBatch]") -> None:
    """Let queued mini-batches start fetching their data (payloads without ``prefetch()`` and
    prefetch errors are ignored: ``load()`` fetches and reports)."""
    for minibatch in minibatches:
        hint = getattr(minibatch.payload, "prefetch", None)
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
        names = getattr(self.payload, "names", None)
        text = "\0".join(names()) if names is not None else self.label
        return f"{zlib.crc32(text.encode('utf-8', 'surrogateescape')):08x}"

    def item_names(self, limit: int = 20) -> str:
        """Its items for a person reading a failure: paths or URLs (the first ``limit`` and
        how many more) when the payload lists them, else the label (a table's file and range)."""
        names = getattr(self.payload, "names", None)
        listed = names() if names is not None else [self.label]
        more = f" (+{len(listed) - limit} more)" if len(listed) > limit else ""
        return ", ".join(listed[:limit]) + more


class FileList:
    """Payload of a file mini-batch: local paths, handed to ``run()`` as a list of str."""

    __slots__ = ("paths",)

    def __init__(self, paths: list[str]):
        self.paths = paths

    def load(self) -> list[str]:
        return list(self.paths)

    def names(self) -> list[str]:
        return self.paths

    def __getstate__(self):
        return self.paths

    def __setstate__(self, state):
        self.paths = state
