"""The dashboard's JSON API with the framework's test client, over a workspace whose run was
made by the real pipeline runner: every endpoint, pagination, the OpenAPI document, the
cancel token, the Host check and read-only methods."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from parallelrun.ui.app import create_app
from parallelrun.ui.logfiles import file_id

from fixtures.ui_server import output_rows, submit, wait_for

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="module")
def client(ui_workspace):
    app = create_app(ui_workspace.ws, cancel_token=TOKEN, poll_seconds=0.2)
    with TestClient(app, base_url="http://127.0.0.1:8787") as test_client:
        yield test_client


def ids(ui_workspace, client) -> dict:
    """A real value for every path parameter of the API."""
    logs = client.get(f"/api/steps/{ui_workspace.step_id}/logs").json()["items"]
    run_logs = client.get(f"/api/runs/{ui_workspace.run_id}/logs").json()["items"]
    return {"run_id": ui_workspace.run_id, "step_id": ui_workspace.step_id, "name": "scoring",
            "file_id": logs[0]["id"], "run_file_id": run_logs[0]["id"], "entry": "0",
            "pipeline_id": "none-published"}


def fill(path: str, values: dict) -> str:
    if path.startswith("/api/runs/{run_id}/logs/{file_id}"):
        values = {**values, "file_id": values["run_file_id"]}
    if path.startswith(("/api/datasets/{name}", )):
        values = {**values, "name": "numbers"}
    if path.startswith(("/api/models/{name}", )):
        values = {**values, "name": "doubler"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


def test_every_documented_endpoint_answers(client, ui_workspace):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert len([p for p in paths if p.startswith("/api/")]) == len(paths) >= 20
    values = ids(ui_workspace, client)
    for path, methods in paths.items():
        url = fill(path, values)
        if path.endswith("/errors/items"):
            url += "?type=ValueError"
        if "get" in methods:
            response = client.get(url)
            assert response.status_code == 200, (url, response.text)
        if "post" in methods:   # the actions: cancel, submitting a published pipeline
            assert path in ("/api/runs/{run_id}/cancel",
                            "/api/published-pipelines/{pipeline_id}/submit")
            assert client.post(url, json={"experiment_name": "x"}).status_code == 403


def test_experiments_and_runs_pages(client, ui_workspace):
    experiments = client.get("/api/experiments").json()
    names = [e["name"] for e in experiments["items"]]
    assert names == sorted(names) and experiments["total"] == len(names)
    entry = experiments["items"][names.index("scoring")]
    assert entry["name"] == "scoring" and entry["run_count"] >= 1
    assert entry["latest_run"]["status"] in ("Finished", "Running", "Canceled", "Queued")
    runs = client.get("/api/experiments/scoring/runs").json()
    run = next(r for r in runs["items"] if r["id"] == ui_workspace.run_id)
    assert run["status"] == "Finished" and run["runner_lost"] is False
    assert run["steps_total"] == run["steps_finished"] == 1
    assert run["items_succeeded"] + run["items_failed"] == 30
    assert run["items_per_second"] > 0 and run["duration"] > 0
    assert client.get("/api/experiments/nope/runs").status_code == 404
    assert client.get("/api/runs", params={"status": "Finished"}).json()["total"] >= 1
    assert client.get("/api/runs", params={"status": "NoSuchStatus"}).json()["total"] == 0


def test_run_detail_with_graph_and_steps(client, ui_workspace):
    run = client.get(f"/api/runs/{ui_workspace.run_id}").json()
    assert run["experiment"] == "scoring" and run["status"] == "Finished"
    [step] = run["steps"]
    assert step["name"] == "score-files" and step["status"] == "Finished"
    assert step["minibatches_total"] == 15
    nodes = {n["id"]: n for n in run["layout"]["nodes"]}
    assert "step:score-files" in nodes and any(n["kind"] == "data" for n in nodes.values())
    assert run["layout"]["edges"][0]["target"] == "step:score-files"
    assert "run_dir" not in run  # no paths where a path is not needed


def test_step_counts_match_the_output_file(client, ui_workspace):
    step = client.get(f"/api/steps/{ui_workspace.step_id}").json()
    rows = output_rows(ui_workspace.step)
    # items 3, 10, 17, 24 fail and take the other item of their mini-batch with them
    assert step["items_succeeded"] == len(rows) == 22
    assert step["items_failed"] == 8 and step["minibatches_failed"] == 4
    assert step["minibatches_done"] == step["minibatches_total"] == 15
    assert step["retries"] == 4  # run_max_try=2: each failing mini-batch was tried again
    assert step["workers_total"] == 2 and {w["process"] for w in step["workers"]} == {
        "process000", "process001"}
    assert sum(w["done"] for w in step["workers"]) == 15  # mini-batches each decided
    [output] = step["outputs"]
    assert output["name"] == "scores" and output["datastore"] == "workspaceblobstore"
    assert output["files"] == [{"name": "parallel_run_step.txt",
                                "size": len("\n".join(rows)) + 1}]


def test_throughput_series(client, ui_workspace):
    series = client.get(f"/api/steps/{ui_workspace.step_id}/throughput").json()
    points = series["points"]
    assert len(points) >= 2 and points[-1]["items"] == 30
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert max(p["rate"] for p in points) > 0


def test_error_summary_groups_and_tracebacks(client, ui_workspace):
    summary = client.get(f"/api/steps/{ui_workspace.step_id}/errors").json()
    assert summary["complete"] and summary["failures"] == 8
    [group] = summary["groups"]
    assert group["type"] == "ValueError" and group["tries"] == 8
    assert group["minibatches_failed"] == 4 and group["retried"] == 4
    assert "Traceback (most recent call last)" in group["traceback"]
    assert f"ValueError: {group['first']['message']}" in group["traceback"]
    items = client.get(f"/api/steps/{ui_workspace.step_id}/errors/items",
                       params={"type": "ValueError", "limit": 3, "offset": 2}).json()
    assert items["total"] == 8 and len(items["items"]) == 3
    assert {i["message"] for i in items["items"]} <= {f"bad item {n}" for n in (3, 10, 17, 24)}
    for item in items["items"]:
        one = client.get(f"/api/steps/{ui_workspace.step_id}/errors/{item['entry']}").json()
        assert one["index"] == item["index"] and one["attempt"] == item["attempt"]
        assert one["traceback"].rstrip().endswith(f"ValueError: {item['message']}")
    assert client.get(f"/api/steps/{ui_workspace.step_id}/errors/99").status_code == 404
    none = client.get(f"/api/steps/{ui_workspace.step_id}/errors/items",
                      params={"type": "KeyError"}).json()
    assert none["total"] == 0 and none["items"] == []


def test_logs_listed_by_id_and_read_by_ranges(client, ui_workspace):
    listing = client.get(f"/api/steps/{ui_workspace.step_id}/logs").json()
    names = [f["name"] for f in listing["items"]]
    assert names[0] == "job_result.txt" and "user/error.txt" in names
    assert "sys/job_report/processed_mini-batches.csv" in names
    assert all(f["id"] == file_id(f["name"]) for f in listing["items"])
    page = client.get(f"/api/steps/{ui_workspace.step_id}/logs",
                      params={"limit": 2, "offset": 2}).json()
    assert [f["name"] for f in page["items"]] == names[2:4] and page["total"] == len(names)
    users = client.get(f"/api/steps/{ui_workspace.step_id}/logs",
                       params={"category": "user"}).json()["items"]
    assert users and all(f["name"].startswith("user/") for f in users)

    result = next(f for f in listing["items"] if f["name"] == "job_result.txt")
    whole = client.get(f"/api/steps/{ui_workspace.step_id}/logs/{result['id']}").json()
    assert whole["text"].startswith("status: Finished") and whole["at_start"] and whole["at_end"]
    # forward pages cut at line ends and join up to the whole file
    text, offset = "", 0
    while True:
        chunk = client.get(f"/api/steps/{ui_workspace.step_id}/logs/{result['id']}",
                           params={"offset": offset, "limit": 40}).json()
        assert chunk["start"] == offset and len(chunk["text"]) <= 40
        # whole lines, unless one line is longer than the page
        assert chunk["at_end"] or chunk["text"].endswith("\n") or "\n" not in chunk["text"]
        text, offset = text + chunk["text"], chunk["end"]
        if chunk["at_end"]:
            break
    assert text == whole["text"]
    # the tail, then the page before it
    tail = client.get(f"/api/steps/{ui_workspace.step_id}/logs/{result['id']}",
                      params={"limit": 60}).json()
    assert tail["at_end"] and whole["text"].endswith(tail["text"]) and tail["start"] > 0
    before = client.get(f"/api/steps/{ui_workspace.step_id}/logs/{result['id']}",
                        params={"before": tail["start"], "limit": 60}).json()
    assert before["end"] == tail["start"] and whole["text"][before["start"]:].startswith(
        before["text"])
    run_logs = client.get(f"/api/runs/{ui_workspace.run_id}/logs").json()["items"]
    assert [f["name"] for f in run_logs] == ["run.log", "runner.out"]
    run_log = client.get(f"/api/runs/{ui_workspace.run_id}/logs/{run_logs[0]['id']}").json()
    assert f"run {ui_workspace.run_id}: Finished" in run_log["text"]


def test_registries_and_compute(client):
    datasets = client.get("/api/datasets").json()
    [numbers] = datasets["items"]
    assert numbers["name"] == "numbers" and numbers["versions"] == 2
    assert numbers["latest"]["version"] == 2 and numbers["latest"]["file_count"] == 10
    versions = client.get("/api/datasets/numbers/versions", params={"limit": 1}).json()
    assert versions["total"] == 2 and [v["version"] for v in versions["items"]] == [2]
    assert client.get("/api/datasets/numbers/versions",
                      params={"limit": 1, "offset": 1}).json()["items"][0]["file_count"] == 30
    models = client.get("/api/models").json()["items"]
    assert models[0]["name"] == "doubler" and models[0]["latest"]["tags"] == {"kind": "toy"}
    assert client.get("/api/models/doubler/versions").json()["items"][0]["version"] == 1
    assert client.get("/api/models/unknown/versions").status_code == 404
    compute = client.get("/api/compute").json()["items"]
    assert [c["name"] for c in compute] == ["local"]
    stores = client.get("/api/datastores").json()["items"]
    assert stores[0]["name"] == "workspaceblobstore"
    summary = client.get("/api/workspace").json()
    assert summary["name"] == "ui-tests" and summary["datasets"] == 1 and summary["models"] == 1


def test_pagination_bounds(client):
    assert client.get("/api/runs", params={"limit": 0}).status_code == 422
    assert client.get("/api/runs", params={"limit": 201}).status_code == 422
    assert client.get("/api/runs", params={"offset": -1}).status_code == 422
    page = client.get("/api/runs", params={"offset": 1000}).json()
    assert page["items"] == [] and page["total"] >= 1


def test_event_stream_of_a_finished_step_sends_its_state_and_ends(client, ui_workspace):
    events = []
    with client.stream("GET", f"/api/steps/{ui_workspace.step_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                events.append([line[7:], None])
            elif line.startswith("data: ") and events:
                events[-1][1] = json.loads(line[6:])
    assert [e[0] for e in events] == ["update", "end"]
    assert events[0][1]["items_succeeded"] == 22 and events[0][1]["status"] == "Finished"
    with client.stream("GET", f"/api/runs/{ui_workspace.run_id}/events") as response:
        text = "".join(response.iter_text())
    assert "event: update" in text and "event: end" in text


def test_pages_and_static_assets(client, ui_workspace):
    for path in ("/", "/runs", "/datasets", "/models", "/compute", "/experiments/scoring",
                 f"/runs/{ui_workspace.run_id}", f"/steps/{ui_workspace.step_id}",
                 f"/steps/{ui_workspace.step_id}/failures"):
        response = client.get(path)
        assert response.status_code == 200 and "/static/app.js" in response.text, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/index.html").status_code == 404  # only the listed assets
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN


def test_read_only_except_cancel(client, ui_workspace):
    for method in ("put", "delete", "patch"):
        assert getattr(client, method)(f"/api/runs/{ui_workspace.run_id}").status_code == 405
    assert client.post(f"/api/runs/{ui_workspace.run_id}").status_code == 405
    assert client.post(f"/api/steps/{ui_workspace.step_id}").status_code == 405


def test_cancel_needs_the_token(client, ui_workspace):
    ws, root = ui_workspace.ws, ui_workspace.root
    run = submit(ws, root, experiment="to-cancel", delay=0.5, workers=1)
    try:
        wait_for(lambda: run.get_status() == "Running", timeout=60)
        url = f"/api/runs/{run.id}/cancel"
        assert client.post(url).status_code == 403
        assert client.post(url, headers={"X-Parallelrun-Token": "wrong"}).status_code == 403
        assert client.post(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert run.get_status() == "Running"
        answer = client.post(url, headers={"X-Parallelrun-Token": TOKEN})
        assert answer.status_code == 200 and answer.json()["cancel_requested"] is True
        assert run.wait_for_completion(timeout_seconds=60, raise_on_error=False) == "Canceled"
        again = client.post(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert again.status_code == 409 and "Canceled" in again.json()["detail"]
        listed = client.get("/api/experiments/to-cancel/runs").json()["items"][0]
        assert listed["status"] == "Canceled" and listed["cancel_requested"] is True
    finally:
        if run.get_status() not in ("Finished", "Failed", "Canceled"):
            run.cancel()


def test_cancel_is_refused_without_a_configured_token(ui_workspace):
    with TestClient(create_app(ui_workspace.ws, cancel_token=None),
                    base_url="http://127.0.0.1") as client:
        response = client.post(f"/api/runs/{ui_workspace.run_id}/cancel",
                               headers={"X-Parallelrun-Token": ""})
        assert response.status_code == 403 and "turned off" in response.json()["detail"]


def test_requests_for_other_host_names_are_refused(ui_workspace):
    app = create_app(ui_workspace.ws, cancel_token=TOKEN)
    for base, status in (("http://127.0.0.1:8787", 200), ("http://localhost:8787", 200),
                         ("http://[::1]:8787", 200), ("http://evil.example:8787", 421),
                         ("http://127.0.0.1.evil.example", 421)):
        with TestClient(app, base_url=base) as client:
            assert client.get("/api/workspace").status_code == status, base
            assert client.get("/").status_code == status, base
    # Host headers that only begin like an allowed name are read by their grammar, not cut at
    # the last colon: refused, as a missing one is
    with TestClient(app, base_url="http://127.0.0.1:8787") as client:
        for host in ("127.0.0.1:8787@evil.example", "127.0.0.1:8787/evil.example",
                     "localhost:8787:evil.example", "[::1]@evil.example:8787", ""):
            response = client.get("/api/workspace", headers={"Host": host})
            assert response.status_code == 421, host
            assert "not served here" in response.json()["detail"], host
            assert "default-src 'self'" in response.headers["content-security-policy"]
    # opened to other hosts (--host): any name
    with TestClient(create_app(ui_workspace.ws, allowed_hosts=None),
                    base_url="http://dashboard.lan:8787") as client:
        assert client.get("/api/workspace").status_code == 200


def test_the_actions_document_the_token_they_need(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    header = next(s for s in schemes.values() if s["type"] == "apiKey")
    assert header["in"] == "header" and header["name"] == "X-Parallelrun-Token"
    assert any(s["type"] == "http" and s["scheme"].lower() == "bearer" for s in schemes.values())
    for path in ("/api/runs/{run_id}/cancel", "/api/published-pipelines/{pipeline_id}/submit"):
        assert {name for need in spec["paths"][path]["post"]["security"] for name in need} == \
            set(schemes), path
    assert "security" not in spec["paths"]["/api/runs/{run_id}"]["get"]
