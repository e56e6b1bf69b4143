"""Partition patterns: keys read from paths, as Azure ML's ``partition_format`` gives them.

``"{region}/{date}/*.csv"`` names two keys; a path such as ``.../eu/2024-01-01/a.csv`` has
``{"region": "eu", "date": "2024-01-01"}``. The pattern matches the end of a path (Azure ML's
formats start at the first key's folder, or anywhere below the datastore's root), ``*`` and
``?`` within one folder, ``**`` across folders. File and tabular datasets both use it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from parallelrun.data.globbing import fragment_regex
from parallelrun.errors import DataError

KEY_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_ ]*)(?::[^}]*)?\}")


def has_keys(text: str) -> bool:
    """Whether ``text`` (a path or pattern) names partition keys in braces."""
    return "{" in text and KEY_RE.search(text) is not None


@dataclasses.dataclass(frozen=True)
class PartitionPattern:
    """A path pattern such as ``{region}/{date}/*.csv``: its keys and how to read them."""

    text: str
    keys: tuple
    regex: Any

    @classmethod
    def parse(cls, text: str) -> "PartitionPattern":
        pattern = text.replace(os.sep, "/")
        keys: list[str] = []
        out, pos = [], 0
        for m in KEY_RE.finditer(pattern):
            out.append(fragment_regex(pattern[pos:m.start()]))
            name = m.group(1)
            if name in keys:
                raise DataError(f"partition pattern {text!r} names {{{name}}} twice; each key "
                                "may appear once")
            out.append(f"(?P<k{len(keys)}>[^/]+?)")
            keys.append(name)
            pos = m.end()
        out.append(fragment_regex(pattern[pos:]))
        if not keys:
            raise DataError(f"partition pattern {text!r} names no keys; write them in braces, "
                            "e.g. '{region}/{date}/*.csv'")
        regex = re.compile("(?:^|/)" + "".join(out).lstrip("/") + "$")
        return cls(text, tuple(keys), regex)

    @property
    def glob(self) -> str:
        return KEY_RE.sub("*", self.text)

    def values(self, path: str) -> dict | None:
        m = self.regex.search(path.replace(os.sep, "/"))
        if m is None:
            return None
        return {k: m.group(f"k{i}") for i, k in enumerate(self.keys)}


class PartitionPayload:
    """A mini-batch's payload with the partition key values it holds: ``run(mini_batch,
    mini_batch_context)`` gets them as ``mini_batch_context.partition_key_value``. Loading,
    prefetching and naming are the inner payload's (local paths or remote files)."""

    __slots__ = ("inner", "partition_key_value")

    def __init__(self, inner: Any, partition_key_value: dict):
        self.inner = inner
        self.partition_key_value = dict(partition_key_value)

    def load(self) -> Any:
        return self.inner.load()

    def prefetch(self) -> None:
        hint = getattr(self.inner, "prefetch", None)
        if hint is not None:
            hint()

    def names(self) -> list[str]:
        return self.inner.names()

    def __getstate__(self):
        return (self.inner, self.partition_key_value)

    def __setstate__(self, state):
        self.inner, self.partition_key_value = state

    def __repr__(self) -> str:
        return f"PartitionPayload({self.partition_key_value}, {self.inner!r})"


def key_label(key_value: dict) -> str:
    """``user=user1,genres=piano``: how a partition's mini-batch is named in logs."""
    return ",".join(f"{k}={v}" for k, v in key_value.items())
