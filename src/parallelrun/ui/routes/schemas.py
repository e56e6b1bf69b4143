"""The shapes of the dashboard API's answers, for its OpenAPI document (``/openapi.json``).

Open models: an endpoint may return more fields than are listed; they pass through.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from parallelrun.pipeline.step_counts import StepCounts

_COUNT_TYPES = typing.get_type_hints(StepCounts)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunBrief(_Open):
    id: str
    status: str
    created_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    duration: Optional[float] = None
    runner_lost: bool = False


class Experiment(_Open):
    name: str
    created_at: float
    run_count: int
    latest_run: Optional[RunBrief] = None


class RunSummary(RunBrief):
    experiment: str
    kind: str
    cancel_requested: bool
    steps_total: int
    steps_finished: int
    items_succeeded: int
    items_failed: int
    items_per_second: float
    error: Optional[str] = None


# A step's counts are fields of pipeline/step_counts.StepCounts, each with its type and meaning,
# rather than a second list of names (a column added there is described here too).
_COUNTS = {field.name: (_COUNT_TYPES[field.name], Field(description=field.metadata["doc"]))
           for field in dataclasses.fields(StepCounts)}
StepSummary = create_model(
    "StepSummary", __base__=_Open, __module__=__name__,
    id=(str, ...), name=(str, ...), kind=(str, ...), status=(str, ...), **_COUNTS,
    duration=(Optional[float], None))


class RunDetail(RunSummary):
    steps: list[StepSummary]
    graph: dict
    layout: dict


class Worker(_Open):
    process: str
    node: Optional[str] = None
    state: Optional[str] = None
    current: Optional[int] = None
    done: int = 0


class StepDetail(StepSummary):
    run_id: str
    minibatches_done: int
    items_done: int
    eta_seconds: Optional[float] = None
    workers_total: int
    workers_ready: int
    workers: list[Worker]
    outputs: list[dict]
    logs_available: bool
    error: Optional[str] = None


class Page(_Open):
    items: list[dict]
    total: int
    limit: int
    offset: int


class ExperimentPage(Page):
    items: list[Experiment]


class RunPage(Page):
    items: list[RunSummary]


class LogFileInfo(_Open):
    id: str
    name: str
    size: int
    modified: float
    category: str


class LogFilePage(Page):
    items: list[LogFileInfo]


class LogChunk(_Open):
    file: LogFileInfo
    start: int
    end: int
    size: int
    at_start: bool
    at_end: bool
    text: str


class ErrorGroup(_Open):
    type: str
    tries: int
    minibatches_failed: int
    retried: int
    first: Optional[dict] = None
    traceback: Optional[str] = None


class ErrorSummary(_Open):
    step_id: str
    groups: list[ErrorGroup]
    failures: int
    scanned_bytes: int
    size: int
    complete: bool


class Failure(_Open):
    entry: int
    index: int
    attempt: int
    outcome: str
    status: str
    type: str
    message: str
    node: str
    process: str
    time: str
    traceback: Optional[str] = None


class FailurePage(Page):
    items: list[Failure]
    type: str


class ThroughputSeries(_Open):
    step_id: str
    points: list[dict]


class CancelResult(_Open):
    id: str
    status: str
    cancel_requested: bool


class PublishedSubmit(BaseModel):
    """The body of ``POST /api/published-pipelines/{id}/submit``."""
    model_config = ConfigDict(extra="forbid")
    experiment_name: str
    pipeline_parameters: dict[str, Any] = {}


class SubmitResult(_Open):
    run_id: str
    experiment: str
    status: str
