"""The counts of a step run: the one definition of the ``step_runs`` counter columns.

A parallel step's job counts its mini-batches and items as it runs (the engine's
``JobProgress``); the run tables record them in one column each, about once a second
(``records.progress_fields``); a reusing step run copies them (``reuse_lookup``); the dashboard
reads them (``ui/state.py``) and describes them in its API (``ui/routes/schemas.py``). Each of
those takes the names, types and meaning from :class:`StepCounts` instead of spelling the list
out. The columns themselves were created by migration 2 (``workspace/catalog.py``), which stays
as it was written; ``tests/pipeline/test_step_counts.py`` holds the table, the engine's
``JobResult`` and ``JobProgress`` and the API's models to this definition.

Example::

    counts = StepCounts.of_progress(progress)
    store.update_step(step_run_id, **counts.columns())
    StepCounts.of_row(row).as_json()    # planning_done as a bool, as the API serves it
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


def _count(doc: str, *, summed: bool = False, default: Any = 0) -> Any:
    # ``summed``: the run's totals add this column up over its steps (the runs page)
    return dataclasses.field(default=default, metadata={"doc": doc, "summed": summed})


@dataclasses.dataclass(frozen=True)
class StepCounts:
    """A step run's mini-batch and item counts, one field per ``step_runs`` column."""

    minibatches_total: int = _count("mini-batches planned so far (all of them once planning is "
                                    "done)", summed=True)
    minibatches_succeeded: int = _count("mini-batches whose output was committed")
    minibatches_failed: int = _count("mini-batches that failed their last try")
    items_succeeded: int = _count("items run() returned a result for", summed=True)
    items_failed: int = _count("items of failed mini-batches, or run() returned no result for",
                               summed=True)
    retries: int = _count("failed tries that were tried again")
    items_per_second: float = _count("items done per second of the step so far", default=0.0)
    planning_done: bool = _count("whether every mini-batch is planned (minibatches_total is "
                                 "final); an INTEGER 0/1 in the table", default=False)

    @classmethod
    def of_progress(cls, progress) -> "StepCounts":
        """The counts of an engine ``JobProgress`` (its ``planned_minibatches`` is the total)."""
        return cls(minibatches_total=progress.planned_minibatches,
                   minibatches_succeeded=progress.minibatches_succeeded,
                   minibatches_failed=progress.minibatches_failed,
                   items_succeeded=progress.items_succeeded, items_failed=progress.items_failed,
                   retries=progress.retries,
                   items_per_second=round(progress.items_per_second(), 3),
                   planning_done=bool(progress.planning_done))

    def fill(self, progress) -> None:
        """Set an engine ``JobProgress``'s counters to these (a step followed from its row,
        ``parallelrun runs watch``); its rate comes from its own times."""
        progress.planned_minibatches = self.minibatches_total
        progress.minibatches_succeeded = self.minibatches_succeeded
        progress.minibatches_failed = self.minibatches_failed
        progress.items_succeeded = self.items_succeeded
        progress.items_failed = self.items_failed
        progress.retries = self.retries
        progress.planning_done = bool(self.planning_done)

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> "StepCounts":
        """The counts of a ``step_runs`` row (or any mapping holding the columns)."""
        values = {name: row[name] for name in COLUMNS}
        values["planning_done"] = bool(values["planning_done"])
        return cls(**values)

    def columns(self) -> dict[str, Any]:
        """Column -> value, as the table stores them (``planning_done`` 0 or 1)."""
        return {**self.as_json(), "planning_done": int(self.planning_done)}

    def as_json(self) -> dict[str, Any]:
        """Field -> value, as the API and ``StepRun.get_counts`` give them."""
        return dataclasses.asdict(self)


#: the ``step_runs`` counter columns, in the table's order
COLUMNS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(StepCounts))
#: the columns a run's totals add up over its steps
SUMMED: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(StepCounts)
                                if field.metadata["summed"])
