"""Stand-in for ``azureml.core.run``: ``Run.get_context()`` for entry scripts."""

from __future__ import annotations

import logging
from typing import Any

from parallelrun import metrics
from parallelrun.compat import module_getattr
from parallelrun.script import current_context

log = logging.getLogger("parallelrun.compat.run")


class Run:
    """The run an entry script belongs to. Metrics and tags land in the job's metrics.

    Outside a worker, ``Run.get_context()`` is an offline run that only logs, as in Azure ML.
    """

    def __init__(self, offline: bool = False):
        self._offline = offline
        self._tags: dict[str, Any] = {}

    @classmethod
    def get_context(cls, allow_offline: bool = True) -> "Run":
        return cls(offline=current_context() is None)

    @property
    def id(self) -> str:
        context = current_context()
        return (context.run_id or "parallelrun-run") if context else "OfflineRun"

    @property
    def input_datasets(self) -> dict[str, Any]:
        """Named inputs of the step (``ds.as_named_input("name")``) by name."""
        context = current_context()
        return dict(context.input_datasets) if context else {}

    def _record(self, kind: str, name: str, value: Any) -> None:
        if self._offline or not metrics.record(kind, name, value):
            log.info("%s %s = %r", kind, name, value)

    def log(self, name: str, value: Any, description: str = "") -> None:
        self._record("metric", name, value)

    def log_list(self, name: str, value: list, description: str = "") -> None:
        self._record("list", name, list(value))

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._record("metric", name, dict(kwargs))

    def tag(self, key: str, value: Any = None) -> None:
        self._tags[key] = value
        self._record("tag", key, value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self) -> dict[str, Any]:
        return dict(self._tags)

    def __getattr__(self, name: str):
        raise AttributeError(f"Run.{name} is not provided by parallelrun inside entry scripts "
                             "(provided: get_context, log, log_list, log_row, tag, set_tags, "
                             "get_tags, input_datasets, id)")


__getattr__ = module_getattr("azureml.core.run")
