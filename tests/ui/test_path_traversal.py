"""No URL reaches a file outside the workspace: every endpoint that takes an id, tried with
``..``, encoded dots and slashes, absolute paths, NUL, and links planted in the log folders,
against the real server (raw request lines, nothing normalised on the way) and through the
test client. A file outside the workspace holds a marker that must never come back."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import uuid
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from parallelrun.pipeline.records import RunStore
from parallelrun.ui.app import create_app
from parallelrun.ui.logfiles import file_id

MARKER = "TOP-SECRET-MARKER-7f3a"

#: every route with an id in it (GET unless marked), as the app declares them
TEMPLATES = [
    "/api/experiments/{name}/runs",
    "/api/runs/{run_id}", "/api/runs/{run_id}/events", "POST /api/runs/{run_id}/cancel",
    "/api/runs/{run_id}/logs", "/api/runs/{run_id}/logs/{file_id}",
    "/api/steps/{step_id}", "/api/steps/{step_id}/events", "/api/steps/{step_id}/throughput",
    "/api/steps/{step_id}/errors", "/api/steps/{step_id}/errors/items?type=ValueError",
    "/api/steps/{step_id}/errors/{entry}", "/api/steps/{step_id}/logs",
    "/api/steps/{step_id}/logs/{file_id}",
    "/api/datasets/{name}/versions", "/api/models/{name}/versions",
    "/experiments/{name}", "/runs/{run_id}", "/steps/{step_id}", "/steps/{step_id}/failures",
    "/static/{name}",
]


@pytest.fixture(scope="module")
def planted(ui_workspace, tmp_path_factory):
    """A secret outside the workspace, links to it inside the step's and the run's folders,
    and a fake run and step whose folders are outside the workspace."""
    outside = tmp_path_factory.mktemp("outside")
    secret = outside / "secret.txt"
    secret.write_text(f"{MARKER}\n" * 10, encoding="utf-8")
    (outside / "job_result.txt").write_text(MARKER, encoding="utf-8")
    (outside / "user").mkdir()
    (outside / "user" / "error.txt").write_text(
        f"2026-01-01T00:00:00.000+00:00 mini-batch 0 try 1 failed: RUN_EXCEPTION "
        f"ValueError: {MARKER} [node0/process000]\n", encoding="utf-8")
    (outside / f"job_progress_overview.2026010100.txt").write_text(MARKER, encoding="utf-8")
    # the records the dashboard reads (engine/logs.py), with the secret in them
    (outside / "sys" / "job_report").mkdir(parents=True)
    (outside / "sys" / "job_report" / "failures.jsonl").write_text(json.dumps(
        {"v": 1, "mini_batch": 0, "attempt": 1, "node": "node0", "process": "process000",
         "finished_at": 0.0, "status": "RUN_EXCEPTION", "outcome": "failed",
         "error_type": "ValueError", "error_message": MARKER,
         "traceback": {"file": "user/error/node0/process000.txt", "offset": 0, "length": 99}})
        + "\n", encoding="utf-8")
    (outside / "sys" / "progress.jsonl").write_text(json.dumps(
        {"v": 1, "time": 1.0, "minibatches_done": 7, "items_succeeded": 7, "items_failed": 0,
         "note": MARKER}) + "\n", encoding="utf-8")
    step = ui_workspace.step.get_details()
    log_dir = step["logDir"]
    links = {
        "user/stdout/node0/evil.stdout.txt": secret,
        "user/linked_folder": outside,
        "user/error/node0/process000.txt.lnk": secret,
    }
    for name, target in links.items():
        os.symlink(target, os.path.join(log_dir, *name.split("/")))
    run_dir = os.path.join(ui_workspace.ws.path, ".parallelrun", "runs", ui_workspace.run_id)
    os.symlink(secret, os.path.join(run_dir, "evil.log"))
    # a run and a step recorded with folders outside the workspace
    store = RunStore(ui_workspace.ws)
    fake_run, fake_step = f"outside_{int(time.time())}_fake", uuid.uuid4().hex
    store.create_run({"id": fake_run, "experiment": "outside", "kind": "pipeline",
                      "graph": {"steps": []}, "run_dir": str(outside), "cwd": str(outside)},
                     [{"id": fake_step, "name": "fake-step", "kind": "parallel", "position": 0}])
    store.update_step(fake_step, log_dir=str(outside), status="Finished")
    store.update_run(fake_run, status="Finished")
    return {"secret": str(secret), "outside": str(outside), "links": list(links),
            "fake_run": fake_run, "fake_step": fake_step, "log_dir": log_dir}


def attacks(secret: str) -> list[str]:
    """Raw path segments a request might use to climb out."""
    return ["..", ".", "%2e%2e", "%2E%2E", "..%2f..%2f..%2fetc%2fpasswd",
            "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2Fetc%2Fpasswd",
            quote(secret, safe=""), "..%5c..%5csecret.txt", "%252e%252e%252f", "%00",
            "secret.txt%00.txt", "....%2f%2f....%2f%2fetc%2fpasswd", "~", "%7e",
            file_id("../../../secret.txt"), file_id(secret), "0" * 20,
            file_id("user/stdout/node0/evil.stdout.txt"), file_id("user/linked_folder/secret.txt"),
            file_id("evil.log")]


def requests(ui_workspace, planted) -> list[tuple[str, str]]:
    """(method, raw path) for every template with one id replaced by every attack."""
    good = {"name": "scoring", "run_id": ui_workspace.run_id, "step_id": ui_workspace.step_id,
            "entry": "0", "file_id": file_id("job_result.txt")}
    result = []
    for template in TEMPLATES:
        method, path = template.split(" ", 1) if " " in template else ("GET", template)
        for param in re.findall(r"\{(\w+)\}", path):
            for attack in attacks(planted["secret"]):
                values = {**good, param: attack}
                result.append((method, re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)))
        # literal slashes and dots, straight in the request line
        if "{" in path:
            first = re.search(r"\{(\w+)\}", path)
            for raw in ("../../../../etc/passwd", "..%2F..%2F" + planted["secret"].lstrip("/"),
                        "/" + planted["secret"].lstrip("/")):
                result.append((method, path[:first.start()] + raw))
    return result


def test_no_id_reaches_outside_the_workspace_on_the_real_server(dashboard, ui_workspace, planted):
    host, port = dashboard.socket.getsockname()[:2]
    checked = 0
    for method, path in requests(ui_workspace, planted):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Host", f"127.0.0.1:{port}")
        connection.putheader("X-Parallelrun-Token", dashboard.token if method == "POST" else "x")
        connection.endheaders()
        response = connection.getresponse()
        body = response.read().decode("utf-8", errors="replace")
        connection.close()
        assert MARKER not in body, (method, path)
        assert "root:x:0:0" not in body, (method, path)
        # refused (404 unknown id, 422 not a number, 400 malformed), never served
        assert response.status == 404 or response.status in (400, 405, 422), (
            method, path, response.status, body[:200])
        checked += 1
    assert checked > 400


def test_a_host_that_only_begins_with_this_machine_is_refused_on_the_real_server(
        dashboard, ui_workspace):
    """``Host: 127.0.0.1:PORT@evil.example`` names evil.example to anything that reads the
    header by its grammar; cut at its last colon it looked like 127.0.0.1 and was served."""
    host, port = dashboard.socket.getsockname()[:2]
    for name in (f"127.0.0.1:{port}@evil.example", f"localhost:{port}/evil.example",
                 "evil.example"):
        for path in ("/api/workspace", f"/api/runs/{ui_workspace.run_id}", "/"):
            connection = http.client.HTTPConnection(host, port, timeout=10)
            connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", name)
            connection.endheaders()
            response = connection.getresponse()
            body = response.read().decode("utf-8", errors="replace")
            connection.close()
            assert response.status == 421, (name, path, response.status, body[:200])
            assert ui_workspace.run_id not in body and "ui-tests" not in body, (name, path)


def test_links_in_log_folders_are_neither_listed_nor_read(ui_workspace, planted):
    with TestClient(create_app(ui_workspace.ws), base_url="http://127.0.0.1") as client:
        listing = client.get(f"/api/steps/{ui_workspace.step_id}/logs",
                             params={"limit": 1000}).json()["items"]
        names = {f["name"] for f in listing}
        assert "job_result.txt" in names
        assert not any(name.startswith(tuple(planted["links"])) for name in names)
        assert not any("linked_folder" in name or "evil" in name for name in names)
        for name in planted["links"] + ["user/linked_folder/secret.txt"]:
            response = client.get(f"/api/steps/{ui_workspace.step_id}/logs/{file_id(name)}")
            assert response.status_code == 404 and MARKER not in response.text
        run_files = client.get(f"/api/runs/{ui_workspace.run_id}/logs").json()["items"]
        assert "evil.log" not in {f["name"] for f in run_files}
        response = client.get(f"/api/runs/{ui_workspace.run_id}/logs/{file_id('evil.log')}")
        assert response.status_code == 404


def test_folders_recorded_outside_the_workspace_are_not_served(ui_workspace, planted):
    with TestClient(create_app(ui_workspace.ws), base_url="http://127.0.0.1") as client:
        step = planted["fake_step"]
        assert client.get(f"/api/steps/{step}").json()["logs_available"] is False
        assert client.get(f"/api/steps/{step}/logs").json()["items"] == []
        assert client.get(f"/api/steps/{step}/logs/{file_id('job_result.txt')}").status_code == 404
        errors = client.get(f"/api/steps/{step}/errors").json()
        assert errors["groups"] == [] and MARKER not in str(errors)
        assert client.get(f"/api/steps/{step}/errors/0").status_code == 404
        assert MARKER not in client.get(f"/api/steps/{step}/throughput").text
        assert client.get(f"/api/runs/{planted['fake_run']}/logs").json()["items"] == []
        assert client.get(f"/api/runs/{planted['fake_run']}").status_code == 200


def test_a_log_file_swapped_for_a_link_after_listing_is_refused(ui_workspace, tmp_path):
    """The id names the file the listing found; a link put in its place is not followed."""
    from parallelrun.ui import logfiles

    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.txt").write_text("fine\n", encoding="utf-8")
    secret = tmp_path / "secret.txt"
    secret.write_text(MARKER, encoding="utf-8")
    [item] = logfiles.list_files(str(folder), within=str(tmp_path))
    assert logfiles.read_chunk(item)["text"] == "fine\n"
    os.unlink(folder / "a.txt")
    os.symlink(secret, folder / "a.txt")
    with pytest.raises(OSError):
        logfiles.read_chunk(item)
    assert logfiles.list_files(str(folder), within=str(tmp_path / "elsewhere")) == []
