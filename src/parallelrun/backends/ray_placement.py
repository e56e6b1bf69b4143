"""Where a Ray job's workers live: a placement-group bundle per node of the job, moved when its
Ray node is lost.

A job on ``node_count`` nodes has one :class:`NodeGroup` per node (``node0``, ``node1``...): the
``process_count_per_node`` workers of that node and the bundle reserving their resources. Where
Ray can keep bundles off given nodes (placement groups with ``bundle_label_selector`` and the
``ray.io/node-id`` label, Ray 2.4x and later), each group has a placement group of its own,
placed one after another, each kept off the nodes of the groups before it: the groups land on
distinct nodes, and one group can move without disturbing the others. On an older Ray the
groups share one ``STRICT_SPREAD`` placement group (a bundle each, its index carried in the
group), and a group moves when Ray itself places its bundle again.

**Losing a node.** When a worker actor dies, :meth:`Placement.node_lost` says whether its node
went with it: the death says so (``ActorDiedError``: "its node has died"), Ray marks the node
dead, or the node's raylet refuses connections (a killed raylet does at once; Ray's own health
checks take ~15 s to declare it dead, and until then it keeps placement groups on it). The
group is then lost: the next worker started in it gets a fresh placement group kept off every
lost node and the other groups' nodes, placed as soon as a live node has room. Workers lost
with their node are infrastructure, not the script's fault (``WorkerLost.node_lost``). A group
that finds no node for ``node_loss_timeout`` seconds fails the job with a message naming the
lost node; every move is appended to ``logs/sys/ray_placement.txt``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import socket
import time
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from parallelrun.errors import BackendError

#: the label Ray gives every node (its id), which bundle label selectors can exclude
NODE_ID_LABEL = "ray.io/node-id"
#: seconds a lost node's group may wait for a live node before the job fails (backend option
#: ``node_loss_timeout``)
NODE_LOSS_TIMEOUT = 120.0
#: seconds to wait for a node's raylet to answer before taking it as alive (a machine that is
#: gone does not refuse, it stays silent: Ray's health checks tell then)
RAYLET_PROBE_TIMEOUT = 1.0
# how Ray words an actor's death with its node (ActorDiedError's cause), and the node's id in it
_NODE_DIED = re.compile(r"node (?:has )?died|node was terminated", re.IGNORECASE)
_NODE_ID_IN_TEXT = re.compile(r"Node Id: ([0-9a-f]{56})", re.IGNORECASE)


def supports_node_exclusion(nodes: list[dict]) -> bool:
    """Whether this Ray can keep a placement group off given nodes (bundle label selectors and
    the node-id label on every node)."""
    if "bundle_label_selector" not in inspect.signature(placement_group).parameters:
        return False
    return all(NODE_ID_LABEL in (n.get("Labels") or {}) for n in nodes)


def raylet_refuses(address: str, port: int, timeout: float = RAYLET_PROBE_TIMEOUT) -> bool:
    """True when nothing listens at a node's raylet port any more (its node is gone)."""
    try:
        socket.create_connection((address, int(port)), timeout=timeout).close()
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False  # silent or unknown: not proof of death
    return False


@dataclasses.dataclass
class NodeGroup:
    """The workers of one node of the job (``node<index>``) and the bundle holding them."""

    index: int
    #: the placement group and the bundle in it that reserve this group's resources
    pg: Any
    bundle_index: int
    #: the Ray node the bundle is on (None while it waits to be placed)
    node_id: str | None = None
    #: whether ``pg`` is this group's alone (it can be removed and replaced)
    own_pg: bool = True
    #: when the group's node was lost and it has not been placed again (time.monotonic())
    lost_at: float | None = None
    #: the lost node, in words, and why it is known to be lost
    lost_node: str = ""
    #: the group's placement group still points at the lost node: replace it at the next start
    stale: bool = False
    #: ``pg.ready()`` of a replacement placement group (each call of ready() is a new task)
    ready_ref: Any = None

    @property
    def name(self) -> str:
        return f"node{self.index}"


class Placement:
    """The job's node groups on a Ray cluster: placing them, noticing lost nodes, moving them."""

    def __init__(self, bundle: dict[str, float], placement_timeout: float,
                 node_loss_timeout: float, log_dir: str):
        self.bundle = bundle
        self.placement_timeout = placement_timeout
        self.node_loss_timeout = node_loss_timeout
        self.path = Path(log_dir, "sys", "ray_placement.txt")
        self.groups: list[NodeGroup] = []
        #: node id -> why it is known to be dead
        self.dead: dict[str, str] = {}
        self._records: dict[str, dict] = {}
        self._exclusion = False
        self._next_table_check = 0.0

    # Placing -------------------------------------------------------------------------------
    def place(self, node_count: int, nodes: list[dict]) -> list[NodeGroup]:
        """One group per node, each on a node of its own; BackendError when the cluster has no
        room within ``placement_timeout``."""
        self._remember(nodes)
        self._exclusion = supports_node_exclusion(nodes)
        deadline = time.monotonic() + self.placement_timeout
        if self._exclusion:
            for index in range(node_count):
                group = NodeGroup(index, self._new_pg(self._used_nodes()), 0)
                self.groups.append(group)
                self._wait_ready(group.pg, deadline)
                group.node_id = self._bundle_node(group)
        else:
            pg = placement_group([self.bundle] * node_count,
                                 strategy="STRICT_SPREAD" if node_count > 1 else "PACK")
            self.groups = [NodeGroup(i, pg, i, own_pg=False) for i in range(node_count)]
            self._wait_ready(pg, deadline)
            for group in self.groups:
                group.node_id = self._bundle_node(group)
        return self.groups

    def _new_pg(self, avoid: set[str]):
        if not avoid:
            return placement_group([self.bundle], strategy="PACK")
        selector = {NODE_ID_LABEL: f"!in({','.join(sorted(avoid))})"}
        return placement_group([self.bundle], strategy="PACK", bundle_label_selector=[selector])

    def _used_nodes(self) -> set[str]:
        """Nodes a new group must keep off: lost ones, and those of the other groups."""
        return set(self.dead) | {g.node_id for g in self.groups if g.node_id and not g.stale}

    def _wait_ready(self, pg, deadline: float) -> None:
        ready, _ = ray.wait([pg.ready()], timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            raise NoRoom()

    def _bundle_node(self, group: NodeGroup) -> str | None:
        table = placement_group_table(group.pg).get("bundles_to_node_id", {})
        return {int(k): v for k, v in table.items()}.get(group.bundle_index)

    def strategy(self, group: NodeGroup) -> PlacementGroupSchedulingStrategy:
        """Where a new worker of ``group`` goes: its bundle, in a fresh placement group if the
        group's node was lost since the last worker started."""
        if group.stale and group.own_pg:
            old, group.pg = group.pg, self._new_pg(self._used_nodes())
            group.node_id, group.stale, group.ready_ref = None, False, group.pg.ready()
            _remove(old)  # what was left in it is on the lost node
        elif group.stale:
            group.stale = False  # the shared group: Ray places the bundle again itself
        return PlacementGroupSchedulingStrategy(group.pg,
                                                placement_group_bundle_index=group.bundle_index)

    # Losing nodes --------------------------------------------------------------------------
    def node_lost(self, group: NodeGroup, node_id: str | None, death: str) -> str | None:
        """Why ``node_id`` (where a worker of ``group`` ran) is known to be dead, or None.

        A lost node loses its group: the group's next worker is placed elsewhere.
        """
        match = _NODE_ID_IN_TEXT.search(death)
        if match and _NODE_DIED.search(death):
            node_id = match.group(1)
        node_id = node_id or group.node_id
        if not node_id:
            return None
        why = self.dead.get(node_id)
        if why is None:
            why = self._why_dead(node_id, death)
            if why is None:
                return None
            self.dead[node_id] = why
        # the group's node (or, before its new place was noted, the node its worker ran on)
        if group.lost_at is None and group.node_id in (node_id, None):
            group.lost_at, group.stale = time.monotonic(), True
            group.lost_node = f"{self.describe(node_id)}: {why}"
            self._append(f"{group.name}: lost Ray node {self.describe(node_id)} ({why}); placing "
                         "its workers on another node")
        return why

    def _why_dead(self, node_id: str, death: str) -> str | None:
        if _NODE_DIED.search(death):
            return "Ray reports that the actor's node died"
        record = self._record(node_id, refresh=True)
        if record is None:
            return None
        if not record.get("Alive", True):
            return "Ray marks the node dead"
        address, port = record.get("NodeManagerAddress"), record.get("NodeManagerPort")
        if address and port and raylet_refuses(address, port):
            return f"its raylet at {address}:{port} refuses connections"
        return None

    def check_moves(self) -> None:
        """Note the groups placed again since the last call; BackendError for a group that has
        waited for a node longer than ``node_loss_timeout``."""
        now = time.monotonic()
        for group in self.groups:
            if group.lost_at is None or group.stale:
                continue
            node = self._placed_node(group, now)
            if node is not None:
                group.node_id, group.lost_at = node, None
                self._append(f"{group.name}: moved to Ray node {self.describe(node)} ({node})")
            elif now - group.lost_at > self.node_loss_timeout:
                raise BackendError(
                    f"{group.name}'s Ray node was lost ({group.lost_node}); for "
                    f"node_loss_timeout={self.node_loss_timeout:g} s no live node could host its "
                    f"workers ({self.bundle} on a node of their own); alive nodes: "
                    f"{self.describe_alive()}. Add a node to the cluster (ray start "
                    "--address=<head>) and resume the job, or raise the Ray backend option "
                    "node_loss_timeout to wait longer; finished mini-batches are kept")

    def _placed_node(self, group: NodeGroup, now: float) -> str | None:
        if group.own_pg:
            ready, _ = ray.wait([group.ready_ref], timeout=0)
            return self._bundle_node(group) if ready else None
        if now < self._next_table_check:  # the shared group: ask the GCS at most twice a second
            return None
        self._next_table_check = now + 0.5
        node = self._bundle_node(group)
        return node if node and node not in self.dead else None

    # Naming nodes --------------------------------------------------------------------------
    def _remember(self, nodes: list[dict]) -> None:
        self._records.update({n["NodeID"]: n for n in nodes})

    def _record(self, node_id: str, refresh: bool = False) -> dict | None:
        if refresh or node_id not in self._records:
            try:
                self._remember(ray.nodes())
            except RayError:
                pass
        return self._records.get(node_id)

    def describe(self, node_id: str | None) -> str:
        """A node in words: its address and the start of its id (nodes of one machine share
        the address)."""
        if not node_id:
            return "no node yet"
        record = self._record(node_id) or {}
        return f"{record.get('NodeManagerAddress', '?')} id {node_id[:12]}"

    def describe_alive(self) -> str:
        """The nodes alive and not known lost (Ray's health checks tell a node's loss late)."""
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive") and n["NodeID"] not in self.dead]
        except RayError:
            return "unknown"
        return ", ".join(f"{self.describe(n['NodeID'])} ({n.get('Resources', {}).get('CPU', 0):g} "
                         "CPU)" for n in nodes) or "none"

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    # Ending --------------------------------------------------------------------------------
    def remove_all(self) -> None:
        """Free every placement group of the job (nothing left to free on a lost cluster)."""
        seen = set()
        for group in self.groups:
            if id(group.pg) not in seen:
                seen.add(id(group.pg))
                _remove(group.pg)
        self.groups = []


class NoRoom(Exception):
    """A placement group was not ready within placement_timeout (the backend words the error)."""


def _remove(pg) -> None:
    try:
        remove_placement_group(pg)
    except (RayError, ValueError, ConnectionError):
        pass  # gone already, or the cluster is
