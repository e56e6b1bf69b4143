"""Ray: the same job on a Ray cluster, ``node_count`` x ``process_count_per_node`` worker actors.

Registered as ``"ray"`` in ``parallelrun.backends.BACKENDS`` and imported only when a job asks
for it, so ``import parallelrun`` never imports Ray. The scheduler is the one every backend
shares; only the carrying changes:

* **Placement.** A bundle per node of the job, each holding ``process_count_per_node``
  workers' CPUs (and GPUs), each on a Ray node of its own (``ray_placement``). Waiting for them
  to be ready is what turns "the cluster is too small or too busy" into a clear error before
  any work starts. A worker lost with its node is infrastructure (``WorkerLost.node_lost``:
  never an init() failure); its node's workers are placed on another node as soon as the loss
  is known, and the job fails only when none can host them for ``node_loss_timeout`` seconds.
* **Workers.** One actor per slot (``max_concurrency=1``), placed in its node's bundle. It wraps
  ``worker_loop``: ``start`` imports the script and calls ``init()`` once, ``run`` runs a
  group of mini-batches and streams their outcomes back (those of quick ones together, up to
  ``OUTCOME_GROUP_SECONDS`` of work), ``stop`` calls ``shutdown()``. Calls from one caller to
  such an actor run in the order they were submitted, which is the scheduler's queue model
  (the head is running). Through Ray Client (``ray://``), which cannot stream, ``run_whole``
  runs the same loop and returns a call's outcomes in one reply.
* **News.** ``poll`` is ``ray.wait`` over the in-flight calls; a call whose actor died (process
  killed, node lost, ``ray.kill`` by the timeout) becomes ``WorkerLost``. Because outcomes come
  in groups, the first mini-batch without an outcome may have finished: unless one mini-batch
  of the call is left to report, the loss is charged to none (``running_known``), and every
  mini-batch that was on the actor goes out again one per call, so a mini-batch that kills its
  worker (or hangs) is charged from its next time on, and no other one ever is. (Mini-batches
  slower than ~50 ms travel one per call after an actor's first two: their failures are
  charged at once.)
* **Files.** When the nodes see the coordinator's files (same node, or a shared filesystem:
  checked with a probe file written in the log folder), the workers read local input paths and
  write their logs straight into the job's log folder. Otherwise the source directory travels as
  the actors' ``runtime_env`` ``working_dir``, logs come back to the coordinator at shutdown,
  and local paths the workers would need (inputs, side inputs, models) are refused before any
  worker starts (``check_local_paths``) with an error that points to datastores.
* **Environment.** The job's ``RuntimeSpec`` (the option ``environment``, which the pipeline
  layer makes from an ``Environment``) becomes Ray's ``runtime_env`` (pip packages, environment
  variables), merged with a ``runtime_env`` dict given in the compute target's
  ``backend_options``.

This module holds :class:`RayBackend` and its book of the calls in flight to each actor (one
concept, ~500 lines: what is sent, what came back, what a lost actor leaves). The rest of the
backend is in sibling modules, one job each: ``ray_connection`` (the process's ``ray.init``,
token auth, a reachability check), ``ray_sizing`` (workers per node and what each reserves),
``ray_placement`` (a bundle per node, moved when its node is lost), ``ray_runtime_env``
(``RuntimeSpec`` to ``runtime_env``, the upload of local folders) and ``ray_worker`` (the actor,
the code that runs on the nodes). The names this module held before the split are still
importable from here.

Backend options (``BackendTarget("ray", {...})`` or ``RayCompute``):

``address``
    ``"auto"`` (default: the running cluster of this machine or ``RAY_ADDRESS``),
    ``"ray://head:10001"``, ``"host:6379"``, or ``"local"`` to start a private local cluster for
    this job. A process already connected with ``ray.init`` keeps its connection.
``runtime_env``
    A Ray ``runtime_env`` dict for the worker actors (``pip``, ``env_vars``, ``working_dir``...).
``num_cpus_per_worker`` / ``num_gpus_per_worker``
    Ray resources each worker actor reserves. Default: 1 CPU (less when more workers than cores
    were asked for, so they still fit), and 1 GPU on nodes with GPUs.
``placement_timeout``
    Seconds to wait for the cluster to have room for every worker (default 60).
``node_loss_timeout``
    Seconds the workers of a lost node may wait for another node to host them before the job
    fails (default 120; finished mini-batches are kept, and the job can be resumed).
``shared_filesystem``
    ``True``/``False`` to skip the probe and say whether the nodes see the coordinator's files.

Longer than most modules: what is left after connection, sizing, placement, runtime env and the
actor moved out is one thing, the backend's submit/poll loop and its rules for which mini-batch a
lost actor was running.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError
from ray.util.client import ray as ray_client
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from parallelrun.backends.base import (
    Backend, Event, MiniBatchDone, Slot, WorkerInitFailed, WorkerLost, WorkerReady, WorkerSpec,
)
from parallelrun.backends.ray_connection import CONNECT_TIMEOUT, connection
from parallelrun.backends.ray_placement import NODE_LOSS_TIMEOUT, NodeGroup, Placement, NoRoom
from parallelrun.backends.ray_runtime_env import (
    merge_runtime_env, runtime_env_of, upload_local_paths,
)
from parallelrun.backends.ray_sizing import (
    Sizing, alive_nodes, describe_nodes, free_resources, size_workers,
)
from parallelrun.backends.ray_worker import (
    OUTCOME_GROUP_SECONDS, RayWorker, pack_minibatches, probe_shared_files, unpack_outcomes,
)
from parallelrun.data.minibatch import MiniBatch
from parallelrun.errors import BackendError, DataError

# the names this module held before it was split, still importable from here
__all__ = ["CONNECT_TIMEOUT", "OUTCOME_GROUP_SECONDS", "RayBackend", "RayWorker", "Sizing",
           "alive_nodes", "merge_runtime_env", "runtime_env_of", "size_workers"]

log = logging.getLogger("parallelrun.backends.ray")

# the folder holding the parallelrun package: shipped to nodes that do not share our files
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


class _Call:
    """One call in flight to an actor: ``start`` (an ObjectRef) or ``run`` (an
    ObjectRefGenerator over the outcomes of ``group``, or through Ray Client one ObjectRef of
    them all; ``reported`` of them received)."""

    __slots__ = ("kind", "waitable", "group", "reported")

    def __init__(self, kind: str, waitable, group: list[MiniBatch] | None = None):
        self.kind = kind
        self.waitable = waitable
        self.group = group or []
        self.reported = 0

    @property
    def unreported(self) -> list[MiniBatch]:
        return self.group[self.reported:]


class _Actor:
    __slots__ = ("slot", "handle", "calls", "ready", "info", "held")

    def __init__(self, slot: Slot, handle):
        self.slot = slot
        self.handle = handle
        self.calls: collections.deque[_Call] = collections.deque()  # in submission order
        self.ready = False
        self.info: dict = {}
        # mini-batches queued here, not yet sent
        self.held: list[MiniBatch] = []

    def unreported(self) -> list[MiniBatch]:
        """Mini-batches handed to this actor whose outcome has not come back."""
        return [mb for call in self.calls for mb in call.unreported] + self.held


class RayBackend(Backend):
    """Worker actors on a Ray cluster; see the module docstring for options.

    Example::

        config = ParallelRunConfig(..., compute_target=RayCompute.attach(None, "ray", "auto"),
                                   node_count=2, process_count_per_node=4)
    """

    name = "ray"
    # A Ray call costs the coordinator ~0.3 ms of CPU, and the actor 1-5 ms between the end of
    # one call and the start of the next (Ray's task switch; more on a busy machine): 100 ms
    # of work queued per actor, sent ~50 ms at a time, keeps that near 5% (50 ms: 12-18%)
    queue_seconds = 0.1

    def __init__(self, spec: WorkerSpec, **options: Any):
        super().__init__(spec, **options)
        known = {"address", "runtime_env", "environment", "num_cpus_per_worker",
                 "num_gpus_per_worker", "placement_timeout", "node_loss_timeout",
                 "shared_filesystem"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise BackendError(f"unknown Ray backend option(s) {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(known))}")
        self.address = options.get("address")
        self.placement_timeout = float(options.get("placement_timeout") or 60)
        self.node_loss_timeout = float(options.get("node_loss_timeout") or NODE_LOSS_TIMEOUT)
        self._actor_class = None
        self._placement: Placement | None = None
        # each slot's node group (its bundle), by slot id
        self._slot_groups: dict[int, NodeGroup] = {}
        self._sizing: Sizing | None = None
        self._shared: bool | None = options.get("shared_filesystem")
        self._runtime_env: dict = {}
        self._actors: dict[int, _Actor] = {}
        # indices of mini-batches that were in flight on an actor that was lost: each goes out
        # in a call of its own, so that if it is the one that kills its worker, it is known
        self._isolated: set[int] = set()
        self._connected = False
        # Ray Client (ray://) cannot stream an actor's results: one reply per call there
        self._streaming = True

    @property
    def bundle_nodes(self) -> dict[int, str | None]:
        """The Ray node each node of the job is on now (None while it waits for one)."""
        groups = self._placement.groups if self._placement else []
        return {group.index: group.node_id for group in groups}

    # Planning --------------------------------------------------------------------------------
    def plan_slots(self, node_count: int, process_count_per_node: int | None) -> list[Slot]:
        connection.acquire(self.address)
        self._connected = True
        self._streaming = not ray_client.is_connected()
        try:
            return self._plan(node_count, process_count_per_node)
        except BaseException:
            self._remove_placement_group()
            self._release()
            raise

    def _plan(self, node_count: int, process_count_per_node: int | None) -> list[Slot]:
        nodes = alive_nodes()
        sizing = size_workers(nodes, node_count, process_count_per_node,
                              self.options.get("num_cpus_per_worker"),
                              self.options.get("num_gpus_per_worker"))
        self._sizing = sizing
        self._placement = Placement(sizing.bundle, self.placement_timeout, self.node_loss_timeout,
                                    self.spec.log_dir)
        try:
            groups = self._placement.place(node_count, nodes)
        except NoRoom:
            raise BackendError(
                f"the Ray cluster has no room for {node_count} node(s) x {sizing.per_node} "
                f"workers ({sizing.bundle} per node, each on its own node) after waiting "
                f"placement_timeout={self.placement_timeout:g} s; nodes: {describe_nodes(nodes)}; "
                f"free now: {free_resources()}. Lower process_count_per_node or node_count, set "
                "num_cpus_per_worker lower, or free the cluster") from None
        if self._shared is None:
            self._shared = self._probe_shared_filesystem()
        self._runtime_env = self._build_runtime_env()
        self._actor_class = ray.remote(RayWorker)
        self._write_placement(nodes)
        slots = []
        for group in groups:
            for _ in range(sizing.per_node):
                slot = Slot(len(slots), group.name, f"process{len(slots):03d}")
                self._slot_groups[slot.id] = group
                slots.append(slot)
        return slots

    def _probe_shared_filesystem(self) -> bool:
        here = ray.get_runtime_context().get_node_id()
        others = sorted(set(self.bundle_nodes.values()) - {here, None})
        if not others:
            return True
        token = uuid.uuid4().hex
        token_path = Path(self.spec.log_dir, "sys", f".shared_fs_probe_{token}")
        token_path.parent.mkdir(parents=True, exist_ok=True)
        token_path.write_text(token, encoding="utf-8")
        probe = ray.remote(num_cpus=0)(probe_shared_files)
        try:
            refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                    .remote(str(token_path), token, self.spec.source_dir) for node in others]
            results = ray.get(refs, timeout=max(30.0, self.placement_timeout))
        except (GetTimeoutError, RayError) as exc:
            raise BackendError(f"could not check whether the Ray nodes share this machine's files "
                               f"(a probe task failed: {exc}); set backend option "
                               "shared_filesystem=True or False to skip the check") from exc
        finally:
            token_path.unlink(missing_ok=True)
        return all(r["shared"] for r in results)

    def _build_runtime_env(self) -> dict:
        env = merge_runtime_env(runtime_env_of(self.options.get("environment")),
                                self.options.get("runtime_env") or {})
        if not self._shared:
            # the nodes cannot see our files: ship the script's folder, and parallelrun itself
            env.setdefault("working_dir", self.spec.source_dir)
            modules = list(env.get("py_modules") or [])
            if _PACKAGE_DIR not in modules:
                modules.append(_PACKAGE_DIR)
            env["py_modules"] = modules
            env = upload_local_paths(env)
        elif self.spec.python and os.path.realpath(self.spec.python) != os.path.realpath(sys.executable) \
                and "py_executable" not in env and "pip" not in env and "conda" not in env:
            # an Environment materialised as a virtualenv the nodes can see
            env["py_executable"] = self.spec.python
        return env

    def _write_placement(self, nodes: list[dict]) -> None:
        sizing = self._sizing
        ips = {n["NodeID"]: n.get("NodeManagerAddress") for n in nodes}
        lines = [f"Ray cluster: {ray.get_runtime_context().gcs_address}",
                 f"nodes: {describe_nodes(nodes)}",
                 (f"a lost node's workers wait for another node at most "
                  f"node_loss_timeout={self.node_loss_timeout:g} s; moves are listed below"),
                 f"workers: {sizing.node_count} node(s) x {sizing.per_node}, each reserving "
                 f"{sizing.cpus:g} CPU" + (f" and {sizing.gpus:g} GPU" if sizing.gpus else ""),
                 f"shared filesystem with the coordinator: {self._shared}"]
        for index, node_id in sorted(self.bundle_nodes.items()):
            lines.append(f"node{index}: Ray node {ips.get(node_id, '?')} ({node_id})")
        if self._runtime_env:
            lines.append(f"runtime_env keys: {', '.join(sorted(self._runtime_env))}")
        path = Path(self.spec.log_dir, "sys", "ray_placement.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # Workers ---------------------------------------------------------------------------------
    def start_worker(self, slot: Slot) -> None:
        sizing = self._sizing
        options: dict[str, Any] = dict(
            num_cpus=sizing.cpus, max_restarts=0, max_concurrency=1,
            scheduling_strategy=self._placement.strategy(self._slot_groups[slot.id]))
        if sizing.gpus:
            options["num_gpus"] = sizing.gpus
        if self._runtime_env:
            options["runtime_env"] = self._runtime_env
        handle = self._actor_class.options(**options).remote()
        actor = _Actor(slot, handle)
        self._actors[slot.id] = actor
        actor.calls.append(_Call("start", handle.start.remote(self.spec, slot, bool(self._shared))))

    def submit_many(self, slot: Slot, minibatches: list[MiniBatch]) -> None:
        actor = self._actors.get(slot.id)
        if actor is not None and minibatches:
            actor.held.extend(minibatches)
            self._send(actor)

    def _send(self, actor: _Actor) -> None:
        # A Ray call costs the coordinator ~0.3 ms of CPU, more than a small run(). So mini-
        # batches wait here while the actor has a call running and the next one queued behind
        # it, and go out together when the running call ends: the actor never waits for a
        # round trip between two calls, and a call carries many. Mini-batches that were on a
        # lost actor go one per call (see running_known).
        while actor.held and len(actor.calls) < 2:
            held = actor.held
            if held[0].index in self._isolated:
                self._isolated.discard(held[0].index)
                size = 1
            else:  # up to the first one that goes alone
                size = next((i for i, mb in enumerate(held) if mb.index in self._isolated),
                            len(held))
            group, actor.held = held[:size], held[size:]
            run = actor.handle.run if self._streaming else actor.handle.run_whole
            actor.calls.append(_Call("run", run.remote(pack_minibatches(group)), group))

    def running_known(self, slot: Slot) -> bool:
        # An actor sends the outcomes of quick mini-batches back in groups, so the first
        # mini-batch without an outcome may have finished: only a call with one mini-batch
        # left to report says which one is running.
        actor = self._actors.get(slot.id)
        return actor is None or not actor.calls or len(actor.calls[0].unreported) <= 1

    def check_local_paths(self, paths: list[tuple[str, str]]) -> None:
        if self._shared or not paths:
            return
        what, path = paths[0]
        more = f" (and {len(paths) - 1} more path(s) of this machine)" if len(paths) > 1 else ""
        raise DataError(
            f"{what} {path!r}{more} is a path on this machine, but the Ray nodes do not share "
            "its filesystem (a probe file written in the log folder was not visible on them), "
            "so the workers cannot read it. Put it on a datastore the nodes can reach "
            "(Datastore.register_azure_blob_container / register_s3_bucket) and use "
            "Dataset.File.from_files(datastore.path('folder/')), or mount a folder at the same "
            "path on every node (a workspace there too, for models)")

    def poll(self, timeout: float | None) -> list[Event]:
        # a lost node's workers placed elsewhere, or waiting too long for a node (BackendError)
        self._placement.check_moves()
        # An actor runs its calls in order, so only the head call of each can have news.
        heads = {actor.calls[0].waitable: actor for actor in self._actors.values() if actor.calls}
        if not heads:
            if timeout:
                time.sleep(min(timeout, 0.05))
            return []
        waitables = list(heads)
        ready, _ = ray.wait(waitables, num_returns=1, timeout=timeout)
        if not ready:
            return []
        if len(waitables) > 1:
            ready, _ = ray.wait(waitables, num_returns=len(waitables), timeout=0)
        results: list[tuple[_Actor, str, Any]] = []
        for waitable in ready:
            self._collect(heads[waitable], results)
        values = self._values([ref for _, _, ref in results])
        events: list[Event] = []
        lost: set[int] = set()
        for (actor, kind, ref), value in zip(results, values):
            if id(actor) in lost:
                continue
            if kind == "run" and isinstance(value, bytes):  # outcomes of consecutive mini-batches
                outcomes = unpack_outcomes(value)
                events.extend(MiniBatchDone(actor.slot.id, outcome) for outcome in outcomes)
                self._count_outcomes(actor, len(outcomes))
                continue
            event = self._event(actor, kind, ref, value)
            events.append(event)
            if isinstance(event, (WorkerLost, WorkerInitFailed)):
                lost.add(id(actor))
                self._forget(actor)
        for actor in {id(a): a for a, _, _ in results}.values():
            if id(actor) not in lost:
                self._send(actor)
        return events

    def _collect(self, actor: _Actor, results: list) -> None:
        """The ref of the result ``ray.wait`` found ready at the head of ``actor``'s calls.

        One per actor and poll: probing the calls behind it costs more (~0.1 ms each) than
        the next ``ray.wait``, which returns at once when more are ready.
        """
        kind, waitable = actor.calls[0].kind, actor.calls[0].waitable
        if kind == "run":
            # the call stays at the head until its outcomes are counted (_count_outcomes)
            results.append((actor, kind, next(waitable) if self._streaming else waitable))
        else:
            actor.calls.popleft()
            results.append((actor, kind, waitable))

    @staticmethod
    def _count_outcomes(actor: _Actor, count: int) -> None:
        call = actor.calls[0]
        call.reported += count
        if not call.unreported:
            actor.calls.popleft()

    @staticmethod
    def _values(refs: list) -> list:
        """``ray.get`` of all refs in one call; the refs that fail give their exception."""
        if not refs:
            return []
        try:
            return ray.get(refs)
        except RayError:
            values = []
            for ref in refs:
                try:
                    values.append(ray.get(ref))
                except RayError as exc:
                    values.append(exc)
            return values

    def _event(self, actor: _Actor, kind: str, ref, value) -> Event:
        if isinstance(value, RayTaskError):
            # our own worker code raised (not the script: its errors are outcomes)
            return WorkerLost(actor.slot.id, f"worker actor failed: {value}",
                              self.running_known(actor.slot))
        if isinstance(value, RayError):
            group = self._slot_groups[actor.slot.id]
            lost_with_node = self._placement.node_lost(group, actor.info.get("node_id"), str(value))
            reason = self._death_reason(actor, value)
            if lost_with_node:
                reason = f"{reason}; its Ray node was lost: {lost_with_node}"
            return WorkerLost(actor.slot.id, reason, self.running_known(actor.slot),
                              node_lost=lost_with_node is not None)
        actor.info = value[-1]
        if value[0] == "ready":
            actor.ready = True
            return WorkerReady(actor.slot.id)
        return WorkerInitFailed(actor.slot.id, value[1], fatal=value[2])

    def _death_reason(self, actor: _Actor, exc: BaseException) -> str:
        # the node that ran it: its own word once it started, else where its bundle was
        where = self._placement.describe(actor.info.get("node_id")
                                         or self._slot_groups[actor.slot.id].node_id)
        pid = actor.info.get("pid")
        text = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in text[:3] if line.strip())[:500]
        what = f"worker actor {actor.slot.node_name}/{actor.slot.process_name}" + (
            f" (pid {pid} on {where})" if pid else f" (on {where})")
        return f"{what} died: {type(exc).__name__}: {detail}"

    def _forget(self, actor: _Actor) -> None:
        self._isolated.update(mb.index for mb in actor.unreported())
        actor.calls.clear()
        actor.held.clear()
        if self._actors.get(actor.slot.id) is actor:
            del self._actors[actor.slot.id]

    def kill_worker(self, slot: Slot) -> None:
        actor = self._actors.get(slot.id)
        if actor is None:
            return
        self._forget(actor)
        try:
            ray.kill(actor.handle, no_restart=True)
        except RayError:
            pass  # already dead

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        actors = list(self._actors.values())
        try:
            stops = {}
            if grace_seconds > 0:
                stops = {a.handle.stop.remote(): a for a in actors if a.ready}
                ready, _ = ray.wait(list(stops), num_returns=len(stops), timeout=grace_seconds) \
                    if stops else ([], [])
                for ref in ready:
                    self._gather_logs(stops[ref], ref)
            for actor in actors:
                self._forget(actor)
                try:
                    ray.kill(actor.handle, no_restart=True)
                except RayError:
                    pass
            self._remove_placement_group()
        finally:
            self._release()

    def _remove_placement_group(self) -> None:
        if self._placement is not None:
            self._placement.remove_all()

    def _gather_logs(self, actor: _Actor, ref) -> None:
        try:
            files = ray.get(ref)
        except RayError as exc:
            log.warning("%s: shutdown() failed: %s", actor.slot.process_name, exc)
            return
        for relative, data in (files or {}).items():
            target = Path(self.spec.log_dir, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "ab") as fh:
                fh.write(data)

    def _release(self) -> None:
        if self._connected:
            self._connected = False
            connection.release()

