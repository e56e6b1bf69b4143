"""pipeline.publish() / PublishedPipeline (submitted by id from Python, the CLI and the
dashboard's API) and Schedule (runs while a scheduler is up, says so when none is): issue #18."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone
from unittest import mock

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parallelrun import (ConfigurationError, Dataset, Experiment, ParallelRunStep, Pipeline,
                         PipelineData, PipelineParameter, WorkspaceError)
from parallelrun.cli import main
from parallelrun.pipeline.published import PublishedPipeline
from parallelrun.pipeline.runs import Run
from parallelrun.pipeline.schedules import (Schedule, Scheduler, ScheduleRecurrence,
                                            scheduler_running)
from parallelrun.ui.app import create_app

from pipeline_helpers import rows_of, wait_for

TOKEN = "published-token-0123456789"


@pytest.fixture
def published(ws, tmp_path, score_config):
    """A published one-step pipeline whose PipelineParameter 'scale' multiplies the numbers."""
    (tmp_path / "data").mkdir()
    for i in range(3):
        (tmp_path / "data" / f"{i}.txt").write_text(str(i + 1))
    scale = PipelineParameter(name="scale", default_value="1")
    step = ParallelRunStep(name="score", parallel_run_config=score_config(),
                           inputs=[Dataset.File.from_files("data/*.txt").as_named_input("nums")],
                           output=PipelineData("scores"), arguments=["--scale", scale],
                           allow_reuse=False)
    return Pipeline(workspace=ws, steps=[step]).publish(name="scoring", version="1.0",
                                                        description="scores numbers")


def scores(run) -> list[str]:
    run.wait_for_completion(raise_on_error=True)
    out = run.find_step_run("score")[0].get_output_data("scores").local_path
    return rows_of(os.path.join(out, "parallel_run_step.txt"))


def test_a_published_pipeline_is_submitted_by_id_with_parameters(ws, published, tmp_path):
    found = PublishedPipeline.get(ws, published.id)
    assert (found.name, found.version, found.status, found.parameters) == \
        ("scoring", "1.0", "Active", {"scale": "1"})
    assert [p.id for p in PublishedPipeline.list(ws)] == [published.id]
    # from Python, from another folder (relative paths resolve where it was published)
    os.chdir(tmp_path.parent)
    assert scores(found.submit(ws, "nightly", pipeline_parameters={"scale": "10"})) == \
        ["0.txt 10", "1.txt 20", "2.txt 30"]
    assert scores(Experiment(ws, "nightly").submit(found)) == ["0.txt 1", "1.txt 2", "2.txt 3"]
    # from the terminal, by a prefix of its id
    result = CliRunner().invoke(main, ["pipeline", "submit", published.id[:8], "--experiment",
                                       "cli", "--param", "scale=5", "--workspace", ws.path])
    assert result.exit_code == 0, result.output
    run_id = result.output.split(":")[0].strip()
    assert scores(Run.get(ws, run_id)) == ["0.txt 5", "1.txt 10", "2.txt 15"]
    assert Run.get(ws, run_id).get_details()["tags"]["published_pipeline_id"] == published.id
    # disabled: refused everywhere, saying how to enable it
    found.disable()
    with pytest.raises(ConfigurationError, match="enable"):
        found.submit(ws, "nightly")
    result = CliRunner().invoke(main, ["pipeline", "submit", published.id, "--experiment", "x",
                                       "--workspace", ws.path])
    assert result.exit_code == 2 and "parallelrun pipeline enable" in result.output
    assert PublishedPipeline.list(ws) == []
    with pytest.raises(WorkspaceError, match="no published pipeline 'nope'"):
        PublishedPipeline.get(ws, "nope")


def test_the_dashboard_api_submits_a_published_pipeline_with_its_token(ws, published):
    with TestClient(create_app(ws, cancel_token=TOKEN),
                    base_url="http://127.0.0.1:8787") as client:
        assert [p["id"] for p in client.get("/api/published-pipelines").json()] == [published.id]
        url = f"/api/published-pipelines/{published.id}/submit"
        body = {"experiment_name": "api", "pipeline_parameters": {"scale": "2"}}
        assert client.post(url, json=body).status_code == 403
        response = client.post(url, json=body, headers={"X-Parallelrun-Token": TOKEN})
        assert response.status_code == 200, response.text
        assert scores(Run.get(ws, response.json()["run_id"])) == \
            ["0.txt 2", "1.txt 4", "2.txt 6"]
        bad = client.post(url, json={"experiment_name": "api", "pipeline_parameters": {"x": 1}},
                          headers={"X-Parallelrun-Token": TOKEN})
        assert bad.status_code == 400 and "scale" in bad.json()["detail"]


def test_a_schedule_warns_without_a_scheduler_and_each_due_time_runs_once(ws, published):
    every_hour = ScheduleRecurrence(frequency="Hour", interval=1)
    with pytest.warns(UserWarning, match="no parallelrun scheduler is running.*schedule serve"):
        schedule = Schedule.create(ws, name="hourly", pipeline_id=published.id,
                                   experiment_name="scheduled", recurrence=every_hour,
                                   pipeline_parameters={"scale": "3"})
    # no start time: the first run is due at once, as in Azure ML; two schedulers race for it
    first, second = Scheduler(ws), Scheduler(ws)
    done = first.run_due() + second.run_due()
    assert [(d[0], d[2]) for d in done] == [(schedule.id, None)]
    assert scores(Run.get(ws, done[0][1])) == ["0.txt 3", "1.txt 6", "2.txt 9"]
    schedule = Schedule.get(ws, schedule.id)
    assert schedule.get_last_pipeline_run().id == done[0][1]
    assert [r.id for r in schedule.get_pipeline_runs()] == [done[0][1]]
    assert timedelta(minutes=59) < schedule.next_run_time - datetime.now(timezone.utc) \
        <= timedelta(hours=1)
    assert first.run_due() == []                       # not due again for an hour
    # a disabled published pipeline: the due run is not submitted, the reason is kept
    PublishedPipeline.get(ws, published.id).disable()
    assert first.run_due(now=time.time() + 3600)[0][2].startswith("ConfigurationError")
    assert "disabled" in Schedule.get(ws, schedule.id).last_error
    schedule.disable()
    assert Schedule.list(ws) == [] and Schedule.get(ws, schedule.id).next_run_time is None
    assert first.run_due(now=time.time() + 7200) == []


def test_the_scheduler_process_runs_schedules_while_it_is_up(ws, published):
    env = {**os.environ, "PARALLELRUN_SCHEDULER_TICK": "0.2"}
    process = subprocess.Popen([sys.executable, "-m", "parallelrun", "schedule", "serve",
                                "--workspace", ws.path], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: scheduler_running(ws), timeout=30)
        start = datetime.now() + timedelta(seconds=1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # a scheduler is up: no warning
            schedule = Schedule.create(
                ws, name="minutely", pipeline_id=published.id, experiment_name="served",
                recurrence=ScheduleRecurrence(frequency="Minute", interval=1, start_time=start))
        wait_for(lambda: Schedule.get(ws, schedule.id).get_last_pipeline_run() is not None,
                 timeout=30)
        run = Schedule.get(ws, schedule.id).get_last_pipeline_run()
        assert scores(run) == ["0.txt 1", "1.txt 2", "2.txt 3"]
        assert run.get_details()["tags"]["schedule_id"] == schedule.id
        assert Schedule.get(ws, schedule.id).next_run_time.timestamp() == \
            pytest.approx((start + timedelta(minutes=1)).timestamp(), abs=0.01)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert not scheduler_running(ws)                     # it left when it stopped
    result = CliRunner().invoke(main, ["schedule", "list", "--workspace", ws.path])
    assert "no scheduler is running" in " ".join(result.output.split())
    listed = json.loads(CliRunner().invoke(main, ["schedule", "list", "--json", "--workspace",
                                                  ws.path]).output)
    assert listed["scheduler_running"] is False
    assert [s["name"] for s in listed["schedules"]] == ["minutely"]


def test_recurrences_give_azure_mls_times():
    utc = "UTC"

    def times(recurrence, count=3, after="2024-01-31T10:00:00+00:00"):
        moment, found = datetime.fromisoformat(after).timestamp(), []
        for _ in range(count):
            moment = recurrence.next_after(moment, 0)
            found.append(datetime.fromtimestamp(moment, timezone.utc).strftime("%a %m-%d %H:%M"))
        return found

    start = "2024-01-31T09:50:00"
    assert times(ScheduleRecurrence("Minute", 15, start_time=start, time_zone=utc)) == \
        ["Wed 01-31 10:05", "Wed 01-31 10:20", "Wed 01-31 10:35"]
    assert times(ScheduleRecurrence("Month", 1, start_time=start, time_zone=utc)) == \
        ["Thu 02-29 09:50", "Sun 03-31 09:50", "Tue 04-30 09:50"]
    assert times(ScheduleRecurrence("Day", 1, start_time=start, time_zone=utc,
                                    hours=[8, 20], minutes=[30])) == \
        ["Wed 01-31 20:30", "Thu 02-01 08:30", "Thu 02-01 20:30"]
    assert times(ScheduleRecurrence("Week", 2, start_time="2024-01-29T00:00:00", time_zone=utc,
                                    week_days=["Monday", "Friday"], time_of_day="07:00")) == \
        ["Fri 02-02 07:00", "Mon 02-12 07:00", "Fri 02-16 07:00"]
    # a start in the future is the first time
    assert times(ScheduleRecurrence("Hour", 6, start_time="2024-02-01T00:00:00",
                                    time_zone=utc), count=2) == ["Thu 02-01 00:00", "Thu 02-01 06:00"]
    for bad in (dict(frequency="Second", interval=1), dict(frequency="Hour", interval=0),
                dict(frequency="Hour", interval=1, hours=[3]),
                dict(frequency="Day", interval=1, time_of_day="25:00"),
                dict(frequency="Day", interval=1, time_zone="Mars/Olympus")):
        with pytest.raises(ConfigurationError):
            ScheduleRecurrence(**bad)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(created=st.floats(min_value=1.6e9, max_value=2.2e9, allow_nan=False),
       frequency=st.sampled_from(["Minute", "Hour", "Day", "Week", "Month"]))
def test_a_schedule_without_a_start_time_is_due_when_it_is_created(ws, published, created,
                                                                   frequency):
    # the first due time was computed as the first after a moment a microsecond earlier, which
    # rounded to the same microsecond about one time in twenty: the first run came a period late
    with mock.patch("parallelrun.pipeline.schedules.time") as clock, pytest.warns(UserWarning):
        clock.time.return_value = created
        schedule = Schedule.create(ws, name="now", pipeline_id=published.id,
                                   experiment_name="scheduled",
                                   recurrence=ScheduleRecurrence(frequency=frequency, interval=1))
    assert abs(schedule._record["next_run_at"] - created) < 1e-3
    schedule.disable()
