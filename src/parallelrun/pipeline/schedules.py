"""``Schedule`` and ``ScheduleRecurrence``: submit a published pipeline on a recurrence, after
Azure ML's ``azureml.pipeline.core.schedule``.

Example (Azure ML's own)::

    recurrence = ScheduleRecurrence(frequency="Day", interval=1, hours=[2], minutes=[30])
    schedule = Schedule.create(ws, name="nightly", pipeline_id=published.id,
                               experiment_name="nightly", recurrence=recurrence)

A schedule is a record in the workspace catalog with the time of its next run. Runs are
submitted by a **scheduler**: ``parallelrun schedule serve --workspace PATH`` (a process that
does only that) or the dashboard server (``parallelrun ui``), either of which checks the due
schedules every few seconds. Without one, nothing runs: ``Schedule.create`` says so with a
warning, :func:`scheduler_running` tells, and a scheduler that starts later submits each overdue
schedule once (not once per missed time) and moves it to its next time.

Each due time is claimed by a compare-and-set on ``next_run_at`` in the catalog, so two
schedulers of one workspace never submit the same time twice. A run that cannot be submitted
(the published pipeline disabled, a bad parameter) is recorded as the schedule's ``last_error``;
the schedule moves on to its next time.

Times: ``start_time`` (a ``datetime`` or ISO text; now by default) anchors the recurrence, in
``time_zone`` (an IANA name such as ``"Europe/Paris"`` or ``"UTC"``; this machine's zone by
default). ``hours`` / ``minutes`` pick times of day and ``week_days`` the days (for ``Day`` and
``Week``); ``time_of_day`` ``"HH:MM"`` is the same as one hour and minute.

Longer than most modules: one concept, a schedule: Azure ML's ``Schedule`` API, its recurrence
arithmetic and the claim of each due time, which only make sense together.
"""

from __future__ import annotations

import calendar
import json
import os
import socket
import threading
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from parallelrun.errors import ConfigurationError, WorkspaceError

ACTIVE, DISABLED = "Active", "Disabled"
FREQUENCIES = ("Minute", "Hour", "Day", "Week", "Month")
WEEK_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: how often a scheduler looks for due schedules (PARALLELRUN_SCHEDULER_TICK overrides it)
TICK_SECONDS = 5.0
SERVE_COMMAND = "parallelrun schedule serve --workspace {path}"


def tick_seconds() -> float:
    """The scheduler's check interval: PARALLELRUN_SCHEDULER_TICK seconds, else 5."""
    try:
        return max(0.05, float(os.environ.get("PARALLELRUN_SCHEDULER_TICK", TICK_SECONDS)))
    except ValueError:
        return TICK_SECONDS


class ScheduleRecurrence:
    """How often a schedule runs: every ``interval`` ``frequency`` (``Minute``, ``Hour``,
    ``Day``, ``Week``, ``Month``) from ``start_time``.

    Example: ``ScheduleRecurrence(frequency="Week", interval=1, week_days=["Monday"],
    time_of_day="08:00")``.
    """

    def __init__(self, frequency: str, interval: int, start_time: Any = None,
                 time_zone: Any = None, hours: list[int] | None = None,
                 minutes: list[int] | None = None, week_days: list[str] | None = None,
                 time_of_day: str | None = None):
        if frequency not in FREQUENCIES:
            raise ConfigurationError("ScheduleRecurrence.frequency", frequency,
                                     f"one of {', '.join(FREQUENCIES)}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigurationError("ScheduleRecurrence.interval", interval,
                                     "a whole number of at least 1")
        self.frequency = frequency
        self.interval = interval
        self.time_zone = time_zone
        self._zone = _zone(time_zone)
        self.start_time = start_time
        self._start = _as_datetime(start_time, self._zone) if start_time is not None else None
        if time_of_day is not None:
            try:
                hour, minute = (int(part) for part in str(time_of_day).split(":"))
            except ValueError:
                hour = minute = -1
            if not (0 <= hour < 24 and 0 <= minute < 60):
                raise ConfigurationError("ScheduleRecurrence.time_of_day", time_of_day,
                                         "'HH:MM', e.g. '08:30'")
            hours, minutes = [hour], [minute]
        self.time_of_day = time_of_day
        self.hours = _numbers("hours", hours, 24)
        self.minutes = _numbers("minutes", minutes, 60)
        if week_days is not None:
            bad = [d for d in week_days if d not in WEEK_DAYS]
            if bad or not week_days:
                raise ConfigurationError("ScheduleRecurrence.week_days", week_days,
                                         f"day names among {', '.join(WEEK_DAYS)}")
        self.week_days = list(week_days) if week_days is not None else None
        if (self.hours or self.minutes or self.week_days) and frequency not in ("Day", "Week"):
            raise ConfigurationError("ScheduleRecurrence", frequency,
                                     "frequency 'Day' or 'Week' with hours, minutes, week_days "
                                     "or time_of_day (Azure ML's rule)")
        if self.week_days and frequency != "Week":
            raise ConfigurationError("ScheduleRecurrence.week_days", week_days,
                                     "only with frequency='Week'")

    def validate(self) -> None:
        """Checked when made; kept for Azure ML code that calls it."""

    def next_after(self, moment: float, anchor: float) -> float:
        """The first time of this recurrence strictly after ``moment`` (epoch seconds);
        ``anchor`` is the start when no ``start_time`` was given."""
        start = self._start or datetime.fromtimestamp(anchor, self._zone)
        after = datetime.fromtimestamp(moment, self._zone)
        if after < start:
            after = start - timedelta(microseconds=1)
        if self.hours or self.minutes or self.week_days:
            return self._next_by_times(start, after).timestamp()
        if self.frequency == "Month":
            months = 0
            while True:
                candidate = _add_months(start, months)
                if candidate > after:
                    return candidate.timestamp()
                months += self.interval
        unit = {"Minute": "minutes", "Hour": "hours", "Day": "days", "Week": "weeks"}
        period = timedelta(**{unit[self.frequency]: self.interval})
        steps = max(0, int((after - start) / period))
        candidate = start + steps * period
        while candidate <= after:
            candidate += period
        return candidate.timestamp()

    def _next_by_times(self, start: datetime, after: datetime) -> datetime:
        hours = self.hours or [start.hour]
        minutes = self.minutes or [start.minute if self.hours is None else 0]
        days = {WEEK_DAYS.index(d) for d in self.week_days} if self.week_days else None
        day = after.date()
        for _ in range(366 * 7 * self.interval + 8):
            offset = (day - start.date()).days
            period_days = 7 if self.frequency == "Week" else 1
            in_period = offset >= 0 and (offset // period_days) % self.interval == 0
            if self.frequency == "Week" and days is None:
                days_ok = offset % 7 == 0
            else:
                days_ok = days is None or day.weekday() in days
            if in_period and days_ok:
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute,
                                             tzinfo=self._zone)
                        if candidate > after and candidate >= start.replace(second=0,
                                                                            microsecond=0):
                            return candidate
            day += timedelta(days=1)
        raise ConfigurationError("ScheduleRecurrence", self.to_dict(), "a recurrence with a time")

    def to_dict(self) -> dict:
        return {"frequency": self.frequency, "interval": self.interval,
                "start_time": _iso(self._start), "time_zone": self.time_zone,
                "hours": self.hours, "minutes": self.minutes, "week_days": self.week_days,
                "time_of_day": self.time_of_day}

    @staticmethod
    def from_dict(data: dict) -> "ScheduleRecurrence":
        data = dict(data)
        if data.get("time_of_day"):
            data.pop("hours", None)
            data.pop("minutes", None)
        return ScheduleRecurrence(**data)

    def __repr__(self) -> str:
        return f"ScheduleRecurrence(frequency={self.frequency!r}, interval={self.interval})"


def _first_due(recurrence: ScheduleRecurrence, now: float) -> float:
    """A new schedule's first due time: ``now`` itself when no start time or times of day are
    given (Azure ML runs it at once). Asked as the first time after a moment a second before
    ``now``: a moment a microsecond before it rounded, one time in several, to ``now``'s own
    microsecond, so the first run was an interval late."""
    return recurrence.next_after(now - 1.0, now)


class Schedule:
    """A published pipeline submitted on a recurrence while a scheduler runs (see the module
    documentation). Attributes: ``id``, ``name``, ``pipeline_id``, ``experiment_name``,
    ``status``, ``recurrence``, ``description``, ``next_run_time``, ``last_error``.
    """

    def __init__(self, workspace: Any, record: dict):
        self._workspace = workspace
        self._record = record

    id = property(lambda self: self._record["id"], doc="The schedule's id.")
    name = property(lambda self: self._record["name"], doc="Its name.")
    pipeline_id = property(lambda self: self._record["pipeline_id"],
                           doc="The published pipeline it submits.")
    experiment_name = property(lambda self: self._record["experiment"],
                               doc="The experiment its runs belong to.")
    status = property(lambda self: self._record["status"], doc="Active or Disabled.")
    description = property(lambda self: self._record["description"], doc="Its description.")
    last_error = property(lambda self: self._record["last_error"],
                          doc="Why its last due run could not be submitted (None if it was).")

    @property
    def recurrence(self) -> ScheduleRecurrence:
        return ScheduleRecurrence.from_dict(self._record["recurrence"])

    @property
    def next_run_time(self) -> datetime | None:
        """When it runs next (while a scheduler runs); None when disabled."""
        at = self._record["next_run_at"]
        return datetime.fromtimestamp(at, timezone.utc) if at is not None else None

    @property
    def pipeline_parameters(self) -> dict:
        return dict(self._record["pipeline_parameters"])

    # Azure ML's API --------------------------------------------------------------------------
    @staticmethod
    def create(workspace: Any, name: str, pipeline_id: str, experiment_name: str,
               recurrence: ScheduleRecurrence | None = None, description: str | None = None,
               pipeline_parameters: dict | None = None, wait_for_provisioning: bool = False,
               wait_timeout: int = 3600, datastore: Any = None, polling_interval: int = 5,
               data_path_parameter_name: str | None = None,
               continue_on_step_failure: bool | None = None, path_on_datastore: str | None = None,
               _workflow_provider: Any = None, _service_endpoint: Any = None) -> "Schedule":
        """Schedule the published pipeline ``pipeline_id`` on ``recurrence``. Warns when no
        scheduler runs for the workspace (then nothing runs until one starts)."""
        from parallelrun.pipeline.experiment import Experiment
        from parallelrun.pipeline.published import PublishedPipeline

        if datastore is not None:
            raise ConfigurationError(
                "Schedule.create: datastore", getattr(datastore, "name", datastore),
                "a recurrence: schedules that watch a datastore for changes are not supported "
                "here. Give recurrence=ScheduleRecurrence(frequency=..., interval=...)")
        if not isinstance(recurrence, ScheduleRecurrence):
            raise ConfigurationError("Schedule.create: recurrence", recurrence,
                                     "a ScheduleRecurrence(frequency='Hour', interval=1)")
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("Schedule.create: name", name, "a non-empty name")
        Experiment(workspace, experiment_name)            # checks the name now
        PublishedPipeline.get(workspace, pipeline_id)     # exists
        parameters = _plain_parameters(pipeline_parameters)
        now = time.time()
        schedule_id = str(uuid.uuid4())
        with workspace.catalog.write() as db:
            db.execute(
                "INSERT INTO schedules (id, name, pipeline_id, experiment, description, status, "
                "recurrence, pipeline_parameters, continue_on_step_failure, next_run_at, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (schedule_id, name, pipeline_id, experiment_name, description, ACTIVE,
                 json.dumps(recurrence.to_dict()), json.dumps(parameters),
                 None if continue_on_step_failure is None else int(continue_on_step_failure),
                 _first_due(recurrence, now), now, now))
        schedule = Schedule.get(workspace, schedule_id)
        if not scheduler_running(workspace):
            warnings.warn(no_scheduler_message(workspace, schedule), stacklevel=2)
        return schedule

    @staticmethod
    def get(workspace: Any, id: str, _workflow_provider: Any = None,
            _service_endpoint: Any = None) -> "Schedule":
        """The schedule ``id`` of ``workspace``."""
        rows = workspace.catalog.query("SELECT * FROM schedules WHERE id = ?", (id,))
        if not rows:
            raise WorkspaceError(f"no schedule {id!r} in workspace {workspace.name!r}; "
                                 "parallelrun schedule list shows them")
        return Schedule(workspace, _decode(rows[0]))

    @staticmethod
    def list(workspace: Any, active_only: bool = True, pipeline_id: str | None = None,
             _workflow_provider: Any = None, _service_endpoint: Any = None) -> list["Schedule"]:
        """The workspace's schedules (active ones unless ``active_only=False``), of one
        published pipeline when ``pipeline_id`` is given."""
        sql, params = "SELECT * FROM schedules WHERE 1 = 1", []
        if active_only:
            sql += " AND status = ?"
            params.append(ACTIVE)
        if pipeline_id is not None:
            sql += " AND pipeline_id = ?"
            params.append(pipeline_id)
        rows = workspace.catalog.query(sql + " ORDER BY created_at", tuple(params))
        return [Schedule(workspace, _decode(row)) for row in rows]

    @staticmethod
    def get_schedules_for_pipeline_id(workspace: Any, pipeline_id: str) -> list["Schedule"]:
        """Every schedule of the published pipeline ``pipeline_id``."""
        return Schedule.list(workspace, active_only=False, pipeline_id=pipeline_id)

    def enable(self, wait_for_provisioning: bool = False, wait_timeout: int = 3600) -> None:
        """Run again from the next time of its recurrence."""
        now = time.time()
        self._update(status=ACTIVE, next_run_at=self.recurrence.next_after(
            now, self._record["created_at"]))
        if not scheduler_running(self._workspace):
            warnings.warn(no_scheduler_message(self._workspace, self), stacklevel=2)

    def disable(self, wait_for_provisioning: bool = False, wait_timeout: int = 3600) -> None:
        """Stop submitting runs until :meth:`enable`."""
        self._update(status=DISABLED, next_run_at=None)

    def update(self, name: str | None = None, description: str | None = None,
               recurrence: ScheduleRecurrence | None = None,
               pipeline_parameters: dict | None = None, status: str | None = None,
               wait_for_provisioning: bool = False, wait_timeout: int = 3600,
               datastore: Any = None, polling_interval: int | None = None,
               data_path_parameter_name: str | None = None,
               continue_on_step_failure: bool | None = None,
               path_on_datastore: str | None = None) -> None:
        """Change what is given; a new recurrence takes effect from now."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if description is not None:
            changes["description"] = description
        if pipeline_parameters is not None:
            changes["pipeline_parameters"] = json.dumps(_plain_parameters(pipeline_parameters))
        if continue_on_step_failure is not None:
            changes["continue_on_step_failure"] = int(continue_on_step_failure)
        if recurrence is not None:
            changes["recurrence"] = json.dumps(recurrence.to_dict())
            if self.status == ACTIVE:
                changes["next_run_at"] = recurrence.next_after(time.time(), time.time())
        if changes:
            self._update(**changes)
        if status == DISABLED:
            self.disable()
        elif status == ACTIVE:
            self.enable()
        elif status is not None:
            raise ConfigurationError("Schedule.update: status", status, "'Active' or 'Disabled'")

    def get_pipeline_runs(self) -> list:
        """The runs it submitted, newest first."""
        from parallelrun.pipeline.experiment import Experiment

        experiment = Experiment(self._workspace, self.experiment_name)
        return [run for run in experiment.get_runs(limit=1000)
                if run.get_details().get("tags", {}).get("schedule_id") == self.id]

    def get_last_pipeline_run(self):
        """The run it submitted last (None before its first)."""
        from parallelrun.pipeline.runs import Run

        run_id = self._refresh()._record["last_run_id"]
        return Run.get(self._workspace, run_id) if run_id else None

    def load_yaml(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigurationError("Schedule.load_yaml", args, "Schedule.create(...) in Python")

    def _refresh(self) -> "Schedule":
        self._record = Schedule.get(self._workspace, self.id)._record
        return self

    def _update(self, **changes: Any) -> None:
        changes["updated_at"] = time.time()
        columns = ", ".join(f"{column} = ?" for column in changes)
        with self._workspace.catalog.write() as db:
            db.execute(f"UPDATE schedules SET {columns} WHERE id = ?",
                       (*changes.values(), self.id))
        self._refresh()

    def to_dict(self) -> dict:
        """What ``parallelrun schedule list --json`` and the dashboard's API show."""
        return {"id": self.id, "name": self.name, "pipeline_id": self.pipeline_id,
                "experiment": self.experiment_name, "status": self.status,
                "description": self.description, "recurrence": self.recurrence.to_dict(),
                "pipeline_parameters": self.pipeline_parameters,
                "next_run_time": _iso(self.next_run_time), "last_run_id":
                self._record["last_run_id"], "last_error": self.last_error}

    def __repr__(self) -> str:
        return (f"Schedule(id={self.id!r}, name={self.name!r}, pipeline_id={self.pipeline_id!r}, "
                f"status={self.status!r})")


# the scheduler --------------------------------------------------------------------------------
def scheduler_running(workspace: Any) -> bool:
    """Whether a scheduler (``parallelrun schedule serve`` or the dashboard server) is up for
    ``workspace``: one that checked in within the last three ticks and whose process lives."""
    from parallelrun.pipeline.runs import runner_alive

    fresh = time.time() - 3 * max(tick_seconds(), TICK_SECONDS)
    for row in workspace.catalog.query("SELECT * FROM schedulers WHERE seen_at > ?", (fresh,)):
        if runner_alive({"host": row["host"], "pid": row["pid"],
                         "pid_started": row["pid_started"], "updated_at": row["seen_at"]}):
            return True
    return False


def no_scheduler_message(workspace: Any, schedule: Schedule) -> str:
    """The warning for a schedule that nothing will run."""
    return (f"schedule {schedule.name!r} ({schedule.id}) is recorded, but no parallelrun "
            f"scheduler is running for workspace {workspace.name!r}: nothing runs until one "
            f"starts. Start one with `{SERVE_COMMAND.format(path=workspace.path)}` (or "
            "`parallelrun ui`, whose server runs schedules too)")


class Scheduler:
    """Submits the due schedules of one workspace every tick, until :meth:`stop`.

    Example: ``Scheduler(ws, kind="process").serve()`` (what ``parallelrun schedule serve``
    runs); the dashboard server runs one in a thread (:meth:`start`).
    """

    def __init__(self, workspace: Any, kind: str = "process", tick: float | None = None):
        self.workspace = workspace
        self.kind = kind
        self.tick = tick if tick is not None else tick_seconds()
        self.id = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: what each tick submitted: (schedule id, run id or None, error or None)
        self.submitted: list[tuple[str, str | None, str | None]] = []

    def check_in(self) -> None:
        from parallelrun.pipeline.processes import process_start_time

        now = time.time()
        with self.workspace.catalog.write() as db:
            db.execute("INSERT INTO schedulers (id, kind, host, pid, pid_started, started_at, "
                       "seen_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET "
                       "seen_at = excluded.seen_at",
                       (self.id, self.kind, socket.gethostname(), os.getpid(),
                        process_start_time(os.getpid()), now, now))
            # schedulers that stopped checking in long ago
            db.execute("DELETE FROM schedulers WHERE seen_at < ?", (now - 3600,))

    def run_due(self, now: float | None = None) -> list[tuple[str, str | None, str | None]]:
        """Submit every active schedule whose time has come (each due time once, whichever
        scheduler claims it); returns what was done."""
        from parallelrun.pipeline.published import PublishedPipeline

        now = time.time() if now is None else now
        done = []
        rows = self.workspace.catalog.query(
            "SELECT * FROM schedules WHERE status = ? AND next_run_at <= ?", (ACTIVE, now))
        for row in rows:
            schedule = Schedule(self.workspace, _decode(row))
            following = schedule.recurrence.next_after(now, schedule._record["created_at"])
            with self.workspace.catalog.write() as db:
                claimed = db.execute(
                    "UPDATE schedules SET next_run_at = ?, updated_at = ? WHERE id = ? AND "
                    "status = ? AND next_run_at = ?",
                    (following, now, schedule.id, ACTIVE, row["next_run_at"])).rowcount == 1
            if not claimed:
                continue                    # another scheduler took this time
            run_id = error = None
            try:
                keep_going = schedule._record["continue_on_step_failure"]
                run = PublishedPipeline.get(self.workspace, schedule.pipeline_id).submit(
                    self.workspace, schedule.experiment_name,
                    pipeline_parameters=schedule.pipeline_parameters or None,
                    continue_on_step_failure=None if keep_going is None else bool(keep_going),
                    tags={"schedule_id": schedule.id})
                run_id = run.id
            except Exception as exc:  # noqa: BLE001 - recorded on the schedule, which goes on
                error = f"{type(exc).__name__}: {exc}"
            with self.workspace.catalog.write() as db:
                db.execute("UPDATE schedules SET last_run_id = COALESCE(?, last_run_id), "
                           "last_error = ? WHERE id = ?", (run_id, error, schedule.id))
            done.append((schedule.id, run_id, error))
        self.submitted.extend(done)
        return done

    def serve(self) -> None:
        """Check in and run due schedules every tick until :meth:`stop` (or SIGTERM in the
        CLI); leaves the scheduler table when it ends."""
        try:
            while not self._stop.is_set():
                try:
                    self.check_in()
                    self.run_due()
                except Exception as exc:  # noqa: BLE001 - a busy catalog must not end it
                    warnings.warn(f"scheduler tick failed (will retry): {exc}", stacklevel=1)
                self._stop.wait(self.tick)
        finally:
            try:
                with self.workspace.catalog.write() as db:
                    db.execute("DELETE FROM schedulers WHERE id = ?", (self.id,))
            except Exception:  # noqa: BLE001 - the row goes stale on its own
                pass

    def start(self) -> "Scheduler":
        """Serve in a daemon thread (the dashboard server's way)."""
        self.check_in()
        self._thread = threading.Thread(target=self.serve, daemon=True,
                                        name="parallelrun-scheduler")
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


# helpers --------------------------------------------------------------------------------------
def _plain_parameters(parameters: dict | None) -> dict:
    parameters = dict(parameters or {})
    for name, value in parameters.items():
        if not isinstance(value, (int, float, str, bool)):
            raise ConfigurationError(
                f"pipeline_parameters[{name!r}]", value,
                "an int, float, str or bool (a schedule keeps plain values; datasets are given "
                "as the PipelineParameter's default when publishing)")
    return parameters


def _zone(time_zone: Any) -> tzinfo | None:
    if time_zone is None:
        return datetime.now().astimezone().tzinfo
    if isinstance(time_zone, tzinfo):
        return time_zone
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return timezone.utc if str(time_zone).upper() == "UTC" else ZoneInfo(str(time_zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError("ScheduleRecurrence.time_zone", time_zone,
                                 "an IANA time zone name such as 'UTC' or 'Europe/Paris'") from None


def _as_datetime(value: Any, zone: tzinfo | None) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigurationError("ScheduleRecurrence.start_time", value,
                                     "a datetime or ISO text such as '2024-01-31T02:30:00'") from None
    if not isinstance(value, datetime):
        raise ConfigurationError("ScheduleRecurrence.start_time", value,
                                 "a datetime or ISO text such as '2024-01-31T02:30:00'")
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def _numbers(name: str, values: list[int] | None, below: int) -> list[int] | None:
    if values is None:
        return None
    if not isinstance(values, (list, tuple)) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < below for v in values):
        raise ConfigurationError(f"ScheduleRecurrence.{name}", values,
                                 f"a list of whole numbers from 0 to {below - 1}")
    return list(values)


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _decode(row: Any) -> dict:
    data = dict(row)
    for field in ("recurrence", "pipeline_parameters"):
        data[field] = json.loads(data[field] or "{}")
    return data
