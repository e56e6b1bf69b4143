"""What only the Ray backend does: placement over nodes, losing a node, runtime_env, addresses,
nodes that do not share the coordinator's files.

Against the session's real Ray cluster (``tests/fixtures/ray_cluster.py``): one node for most
tests, a second node added with Ray's own ``Cluster`` utility for the multi-node ones.
"""

from __future__ import annotations

import csv
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parallelrun import (BackendError, Dataset, Datastore, Environment, Experiment, JobProgress,
                         ParallelRunConfig, ParallelRunStep, Pipeline, PipelineData,
                         ProgressListener, RayCompute, Workspace, run_job)
from parallelrun.backends import BackendTarget, WorkerSpec, get_backend
from parallelrun.backends.base import MiniBatchDone, WorkerReady
from parallelrun.data.minibatch import FileList, MiniBatch
from parallelrun.errors import DataError
from parallelrun.script import ResultEncoder

NUMBERS = """
    import os, time
    def init(): pass
    def run(mini_batch):
        time.sleep({sleep})
        return [f"{{int(open(p).read())}} {{os.environ.get('FROM_TARGET')}} {{os.environ.get('FROM_ENV')}}"
                for p in mini_batch]
"""


def config(src, **overrides) -> ParallelRunConfig:
    values = dict(source_directory=str(src), entry_script="score.py", mini_batch_size=1,
                  error_threshold=-1, output_action="append_row", run_invocation_timeout=60,
                  compute_target="ray")
    values.update(overrides)
    return ParallelRunConfig(**values)


def numbers(result) -> list[int]:
    return sorted(int(line.split()[0]) for line in Path(result.output_file).read_text().splitlines())


def report(result) -> list[dict]:
    with open(Path(result.log_dir) / "sys/job_report/processed_mini-batches.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# Sizing (no cluster needed: node records as ray.nodes() gives them) --------------------------

def node(cpu, gpu=0, ip="10.0.0.1"):
    resources = {"CPU": cpu, **({"GPU": gpu} if gpu else {})}
    return {"NodeID": ip, "NodeManagerAddress": ip, "Alive": True, "Resources": resources}


def test_workers_per_node_default_to_gpus_then_cores():
    from parallelrun.backends.ray import size_workers

    gpu = size_workers([node(16, 4), node(16, 4)], node_count=2, process_count_per_node=None)
    assert (gpu.per_node, gpu.cpus, gpu.gpus, gpu.bundle) == (4, 1.0, 1.0, {"CPU": 4.0, "GPU": 4.0})
    cpu = size_workers([node(8)], node_count=1, process_count_per_node=None)
    assert (cpu.per_node, cpu.cpus, cpu.gpus) == (8, 1.0, 0.0)
    # more workers than cores asked for: they share the cores, so they still fit on the node
    crowded = size_workers([node(2)], node_count=1, process_count_per_node=8)
    assert (crowded.per_node, crowded.cpus, crowded.bundle) == (8, 0.25, {"CPU": 2.0})
    with pytest.raises(BackendError, match=r"node_count=3, but the Ray cluster has 2 alive node"):
        size_workers([node(4), node(4)], node_count=3, process_count_per_node=1)


# One node --------------------------------------------------------------------------------------

def test_node_count_beyond_the_cluster_is_a_clear_error(ray_cluster, make_script, make_files, tmp_path):
    src = make_script(NUMBERS.format(sleep=0))
    with pytest.raises(BackendError, match=r"node_count=2, but the Ray cluster has 1 alive node"):
        run_job(config(src, node_count=2), [Dataset.File.from_files(str(make_files(2)))],
                tmp_path / "out")


def _environment_with_a_variable() -> Environment:
    env = Environment(name="ray-env")
    env.environment_variables = {"FROM_ENV": "env"}
    return env


def test_default_workers_environment_and_compute_target(ray_cluster, make_script, make_files, tmp_path):
    src = make_script(NUMBERS.format(sleep=0.05))
    target = RayCompute.attach(None, "ray-cluster", address="auto",
                               runtime_env={"env_vars": {"FROM_TARGET": "target"}})
    progress = JobProgress()
    result = run_job(config(src, compute_target=target, environment=_environment_with_a_variable()),
                     [Dataset.File.from_files(str(make_files(8)))], tmp_path / "out", progress=progress)
    assert result.status == "Finished", result.error
    assert progress.workers_total == 2  # the node's 2 cores
    lines = Path(result.output_file).read_text().splitlines()
    assert sorted(lines) == sorted(f"{n} target env" for n in range(8))
    placement = (Path(result.log_dir) / "sys/ray_placement.txt").read_text()
    assert "1 node(s) x 2, each reserving 1 CPU" in placement and "runtime_env keys: env_vars" in placement


def test_attach_registers_the_cluster_in_the_workspace(ray_cluster, make_script, make_files, tmp_path):
    ws = Workspace.create(name="ws", path=str(tmp_path / "ws"))
    attached = RayCompute.attach(ws, "ray-cluster", address="auto", placement_timeout=30)
    # a new process reading the catalog gets the same target back, and a job runs on it
    stored = Workspace.get("ws", path=str(tmp_path / "ws")).compute_targets["ray-cluster"]
    assert (stored.kind, stored.address, stored.backend_options) == (
        "ray", "auto", {"address": "auto", "placement_timeout": 30})
    assert stored.to_record() == attached.to_record()
    src = make_script(NUMBERS.format(sleep=0))
    result = run_job(config(src, compute_target=stored, process_count_per_node=1),
                     [Dataset.File.from_files(str(make_files(3)))], tmp_path / "out")
    assert result.status == "Finished" and numbers(result) == [0, 1, 2]
    assert RayCompute.attach(None, "no-workspace", address="ray://head:10001").address == \
        "ray://head:10001"


def test_a_pipeline_step_runs_on_the_attached_cluster(ray_cluster, make_script, make_files, tmp_path):
    ws = Workspace.create(name="ws", path=str(tmp_path / "ws"))
    RayCompute.attach(ws, "ray-cluster", address=ray_cluster.address)
    src = make_script(NUMBERS.format(sleep=0))
    scores = PipelineData("scores")
    step = ParallelRunStep(
        name="score", inputs=[Dataset.File.from_files(str(make_files(5))).as_named_input("numbers")],
        output=scores, parallel_run_config=config(
            src, compute_target=ws.compute_targets["ray-cluster"], process_count_per_node=2))
    # the run goes on in a process of its own, which connects to the cluster by its address
    run = Experiment(ws, "on-ray").submit(Pipeline(workspace=ws, steps=[step]))
    try:
        assert run.wait_for_completion(timeout_seconds=180) == "Finished"
    finally:
        run.cancel()
    step_run = run.find_step_run("score")[0]
    output = Path(step_run.get_output_data("scores").local_path, "parallel_run_step.txt")
    assert sorted(int(line.split()[0]) for line in output.read_text().splitlines()) == list(range(5))
    placement = Path(step_run.get_details()["logDir"], "sys", "ray_placement.txt").read_text()
    assert "1 node(s) x 2" in placement


# Two nodes -------------------------------------------------------------------------------------

class _RemoveNodeAfterItsFirstResult(ProgressListener):
    """Takes the second node out of the cluster once a worker on it finished a mini-batch."""

    def __init__(self, cluster, node):
        self.cluster, self.node, self.removed_at = cluster, node, None

    def on_record(self, progress, record):
        if self.removed_at is None and record.node_name == "node1" and record.status == "RUN_DONE":
            self.removed_at = record.index
            self.cluster.remove_node(self.node, allow_graceful=False)


def test_workers_spread_over_nodes_and_a_lost_node_is_retried(ray_cluster, ray_second_node,
                                                            make_script, make_files, tmp_path):
    src = make_script(NUMBERS.format(sleep=0.2))
    loss = _RemoveNodeAfterItsFirstResult(ray_cluster, ray_second_node)
    started = time.monotonic()
    result = run_job(config(src, node_count=2, process_count_per_node=1, run_max_try=2),
                     [Dataset.File.from_files(str(make_files(24)))], tmp_path / "out",
                     listeners=[loss])
    assert result.status == "Finished", result.error
    assert numbers(result) == list(range(24))  # every row once
    assert loss.removed_at is not None
    tries = report(result)
    assert {r["node"] for r in tries if r["status"] == "RUN_DONE"} == {"node0", "node1"}
    died = [r for r in tries if r["status"] == "PROCESS_DIED"]
    assert died and all(r["node"] == "node1" for r in died) and result.retries == len(died)
    assert "died" in died[0]["error_message"]
    placement = (Path(result.log_dir) / "sys/ray_placement.txt").read_text()
    node_ids = {line.split("(")[-1].rstrip(")") for line in placement.splitlines()
                if line.startswith(("node0:", "node1:"))}
    assert len(node_ids) == 2  # one worker on each Ray node
    assert "Ray actor on node" in (Path(result.log_dir) / "sys/node/node1/process001.txt").read_text()
    assert time.monotonic() - started < 60  # the lost node did not stall the job


# Addresses: a separate process connecting to a running cluster, or starting its own ----------

def _cli(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parallelrun.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=240, env=dict(os.environ))


@pytest.mark.parametrize("address", ["cluster", "client", "local"])
def test_cli_runs_on_ray_by_address(ray_cluster, make_script, make_files, tmp_path, address):
    src = make_script(NUMBERS.format(sleep=0))
    data = make_files(6)
    ray_address = {"cluster": ray_cluster.address, "client": ray_cluster.client_address,
                   "local": "local"}[address]
    done = _cli(["run", "--compute", "ray", "--ray-address", ray_address, "--source-directory",
                 str(src), "--entry-script", "score.py", "--input", str(data), "--output",
                 str(tmp_path / "out"), "--process-count-per-node", "1", "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (tmp_path / "out" / "parallel_run_step.txt").read_text().splitlines()
    assert sorted(int(line.split()[0]) for line in lines) == list(range(6))


@pytest.mark.parametrize("address", ["127.0.0.1:9", "ray://127.0.0.1:9"])
def test_cli_says_when_no_cluster_answers(make_script, make_files, tmp_path, address):
    src = make_script(NUMBERS.format(sleep=0))
    done = _cli(["run", "--compute", "ray", "--ray-address", address, "--source-directory",
                 str(src), "--entry-script", "score.py", "--input", str(make_files(1)), "--output",
                 str(tmp_path / "out"), "--quiet"], tmp_path)
    assert done.returncode == 2
    # the CLI names its flag (cli/common.py's in_cli_words), not run_job's address='...'
    assert (f"cannot connect to a Ray cluster at --ray-address {address}: nothing answers"
            in done.stderr)


# Nodes that do not see the coordinator's files -----------------------------------------------

BESIDE = """
    import os
    def init():
        global label
        here = os.path.dirname(os.path.realpath(__file__))
        label = open(os.path.join(here, "label.txt")).read().strip()
        print("init from", here)
    def run(mini_batch):
        return [f"{label} {os.path.dirname(os.path.realpath(__file__))}"]
"""


def _wait_for(backend, kind, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in backend.poll(0.5):
            assert isinstance(event, kind), event
            return event
    raise AssertionError(f"no {kind.__name__} within {timeout} s")


def test_without_a_shared_filesystem_the_source_travels_and_logs_come_back(ray_cluster, make_script,
                                                                           tmp_path):
    src = make_script(BESIDE)
    (src / "label.txt").write_text("shipped")
    log_dir = tmp_path / "logs"
    spec = WorkerSpec(script_path=str(src / "score.py"), source_dir=str(src), arguments=[],
                      encoder=ResultEncoder(), output_dir=str(tmp_path / "out"), log_dir=str(log_dir))
    backend = get_backend("ray")(spec, shared_filesystem=False)
    slot = backend.plan_slots(1, 1)[0]
    try:
        backend.start_worker(slot)
        _wait_for(backend, WorkerReady)
        backend.submit_many(slot, [MiniBatch(1, 1, FileList(["az://container/a.png"]), "remote")])
        outcome = _wait_for(backend, MiniBatchDone).outcome
    finally:
        backend.shutdown()
    assert outcome.status == "RUN_DONE", outcome.traceback
    label, ran_in = outcome.payload.decode().split()
    assert label == "shipped" and Path(ran_in) != src  # Ray's copy of the source directory
    # the worker's logs came back into the job's log layout
    assert "init from" in (log_dir / "user/stdout/node0/process000.stdout.txt").read_text()
    assert "init() done" in (log_dir / "sys/node/node0/process000.txt").read_text()
    placement = (log_dir / "sys/ray_placement.txt").read_text()
    assert "shared filesystem with the coordinator: False" in placement


def test_without_a_shared_filesystem_local_inputs_are_refused_before_workers_start(
        ray_cluster, azurite, make_script, make_files, tmp_path):
    data = make_files(3)
    target = BackendTarget("ray", {"shared_filesystem": False})
    with pytest.raises(DataError, match=r"input '.*data'.*do not share.*datastore"):
        run_job(config(make_script(NUMBERS.format(sleep=0)), compute_target=target),
                [Dataset.File.from_files(str(data))], tmp_path / "out")
    logs = tmp_path / "out" / "logs"
    assert not [p for p in logs.rglob("*") if "node0" in p.parts]  # no worker started
    # a remote input is fine (run_job lists it before any work), a local side input is not
    ws = Workspace.create("ray-remote", path=tmp_path / "ws")
    store = Datastore.register_azure_blob_container(
        ws, datastore_name="images", container_name=azurite.new_container(),
        account_name=azurite.account_name, account_key=azurite.account_key,
        endpoint=f"127.0.0.1:{azurite.port}", protocol="http")
    azurite.filesystem().pipe({f"{store.container_name}/a.png": b"png"})
    with pytest.raises(DataError, match=r"side input 'labels'"):
        run_job(config(make_script(NUMBERS.format(sleep=0)), compute_target=target),
                [Dataset.File.from_files((store, "*.png"))],
                tmp_path / "out2", side_inputs={"labels": str(data)})


def test_backend_target_options_are_checked():
    spec = WorkerSpec(script_path="x.py", source_dir=".", arguments=[], encoder=ResultEncoder(),
                      output_dir=".", log_dir=".")
    with pytest.raises(BackendError, match="unknown Ray backend option.*adress"):
        get_backend("ray")(spec, **BackendTarget("ray", {"adress": "auto"}).backend_options)


def test_mini_batches_and_outcomes_travel_as_plain_pickles():
    """What crosses Ray for each call and streamed item: bytes of the C pickler, outcomes as
    plain tuples (Ray's serializer calls back into Python for every object of a list), with
    every field of every outcome, a failure's text included, back as it was sent."""
    from parallelrun.backends.ray_worker import pack_minibatches, pack_outcomes, unpack_outcomes
    from parallelrun.script import RunOutcome

    group = [MiniBatch(i, 2, FileList([f"/data/{i}a.png", f"/data/{i}b.png"]), f"files {i}")
             for i in range(3)]
    sent = pack_minibatches(group)
    assert isinstance(sent, bytes)
    assert [(mb.index, mb.items, mb.label, mb.digest()) for mb in pickle.loads(sent)] == \
        [(mb.index, mb.items, mb.label, mb.digest()) for mb in group]
    outcomes = [RunOutcome(0, "RUN_DONE", 2, 2, b"a\nb\n", 2, 0.001, 0.002),
                RunOutcome(1, "RUN_FAILED", 2, 0, error_type="ValueError", error_message="bad",
                           traceback="Traceback ...")]
    data = pack_outcomes([outcome.to_message() for outcome in outcomes])
    assert isinstance(data, bytes) and b"RunOutcome" not in data
    assert unpack_outcomes(data) == outcomes
