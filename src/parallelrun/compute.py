"""Compute targets: named places where jobs run, each mapped to a backend by name.

A compute target is a small record (name, kind, backend options) that a workspace can store
and that ``run_job`` turns into a backend through two attributes: ``backend`` (a name in
``parallelrun.backends.BACKENDS``) and ``backend_options``. Kinds register in ``COMPUTE_KINDS``
so a workspace can rebuild them from its catalog.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar

from parallelrun.errors import BackendError, ComputeTargetException, ConfigurationError  # noqa: F401 (re-exported)

COMPUTE_KINDS: dict[str, type["ComputeTarget"]] = {}


def _is_workspace(value: Any) -> bool:
    # a workspace is what holds compute targets; this layer never imports the workspace layer
    return value is not None and not isinstance(value, str) and hasattr(value, "compute_targets")


class _FindsByWorkspace(type):
    """Lets ``AmlCompute(ws, "cpu-cluster")`` and ``ComputeTarget(workspace=ws, name=...)`` look
    a registered target up, as Azure ML's constructors do, while ``AmlCompute(name=...)`` (the
    dataclass's own fields) still builds one."""

    def __call__(cls, *args: Any, **kwargs: Any):
        if "workspace" in kwargs or (args and _is_workspace(args[0])):
            workspace = kwargs.pop("workspace") if "workspace" in kwargs else args[0]
            rest = args[1:] if args and workspace is args[0] else args
            name = kwargs.pop("name", rest[0] if rest else None)
            return cls._find(workspace, name)
        return super().__call__(*args, **kwargs)


@dataclasses.dataclass
class ComputeTarget(metaclass=_FindsByWorkspace):
    """Base of compute targets. ``kind`` names the subclass in the workspace catalog.

    ``ComputeTarget(workspace=ws, name="cpu-cluster")`` (or ``AmlCompute(ws, "cpu-cluster")``)
    is the target registered under that name; :class:`ComputeTargetException` when there is
    none (or it is of another kind), which Azure ML's notebooks catch to create it::

        try:
            compute_target = ComputeTarget(workspace=ws, name="cpu-cluster")
        except ComputeTargetException:
            compute_target = ComputeTarget.create(ws, "cpu-cluster", provisioning_config)
    """

    name: str
    kind: ClassVar[str] = ""
    backend: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            COMPUTE_KINDS[cls.kind] = cls

    @property
    def backend_options(self) -> dict[str, Any]:
        return {}

    def to_record(self) -> dict[str, Any]:
        """What a workspace stores: the kind and the fields (never secrets)."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @staticmethod
    def from_record(record: dict[str, Any]) -> "ComputeTarget":
        data = dict(record)
        cls = COMPUTE_KINDS[data.pop("kind")]
        return cls(**data)

    @classmethod
    def _find(cls, workspace: Any, name: Any) -> "ComputeTarget":
        if not _is_workspace(workspace):
            raise ComputeTargetException(
                f"workspace={workspace!r} is not a workspace; pass Workspace.from_config()")
        if not isinstance(name, str) or not name:
            raise ComputeTargetException(
                f"name={name!r}: give the name of a compute target, e.g. "
                f"{cls.__name__}(ws, 'cpu-cluster')")
        targets = workspace.compute_targets
        if name not in targets:
            raise ComputeTargetException(
                f"ComputeTargetNotFound: no compute target {name!r} in workspace "
                f"{getattr(workspace, 'name', workspace)!r} (registered: "
                f"{', '.join(sorted(targets)) or 'none'}); create it with "
                f"ComputeTarget.create(ws, {name!r}, AmlCompute.provisioning_configuration(...))")
        target = targets[name]
        if not isinstance(target, cls):
            raise ComputeTargetException(
                f"compute target {name!r} is of kind {target.kind!r} "
                f"({type(target).__name__}), not {cls.__name__}; use "
                f"ComputeTarget(workspace=ws, name={name!r}) to get it whatever its kind")
        return target

    @staticmethod
    def list(workspace: Any) -> list["ComputeTarget"]:
        """Every compute target registered in ``workspace`` (Azure ML's
        ``ComputeTarget.list(ws)``)."""
        targets = workspace.compute_targets
        return [targets[name] for name in targets]

    @staticmethod
    def create(workspace: Any, name: str, provisioning_configuration: Any) -> "ComputeTarget":
        """Create the compute target ``provisioning_configuration`` describes and register it
        as ``workspace.compute_targets[name]`` (Azure ML's call).

        Example: ``ComputeTarget.create(ws, "cpu-cluster",
        AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4))``.
        """
        create_target = getattr(provisioning_configuration, "create_target", None)
        if not callable(create_target):
            raise ConfigurationError(
                "provisioning_configuration", provisioning_configuration,
                "a provisioning configuration, e.g. AmlCompute.provisioning_configuration(...)")
        target = create_target(name)
        if workspace is not None:
            workspace.compute_targets[name] = target
            target.workspace = workspace
        return target


@dataclasses.dataclass
class LocalCompute(ComputeTarget):
    """Worker processes on this machine (the default, ``ws.compute_targets["local"]``).

    ``max_workers`` caps ``process_count_per_node`` when set (what ``AmlCompute``'s node
    counts turn into on one machine).
    """

    max_workers: int | None = None
    kind: ClassVar[str] = "local"
    backend: ClassVar[str] = "local"


@dataclasses.dataclass
class RayCompute(ComputeTarget):
    """A Ray cluster: the job's workers run as Ray actors over ``node_count`` of its nodes.

    Example::

        ray_compute = RayCompute.attach(ws, "ray-cluster", address="auto")
        config = ParallelRunConfig(..., compute_target=ray_compute, node_count=4,
                                   process_count_per_node=8)

    ``address``: ``"auto"`` (the cluster this machine runs or ``RAY_ADDRESS`` names),
    ``"ray://head:10001"``, ``"head:6379"``, or ``"local"`` (a private local cluster started
    for each job and stopped after it). The address is checked when a job starts, not here.
    ``runtime_env``: a Ray ``runtime_env`` dict for the worker actors (``pip``, ``env_vars``...),
    merged with the job's ``environment``. ``options``: further Ray backend options
    (``num_cpus_per_worker``, ``num_gpus_per_worker``, ``placement_timeout``,
    ``shared_filesystem``, ``node_loss_timeout``; see ``parallelrun.backends.ray``).
    """

    address: str = "auto"
    runtime_env: dict[str, Any] | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    kind: ClassVar[str] = "ray"
    backend: ClassVar[str] = "ray"

    @property
    def backend_options(self) -> dict[str, Any]:
        options = dict(self.options)
        options["address"] = self.address
        if self.runtime_env:
            options["runtime_env"] = dict(self.runtime_env)
        return options

    @classmethod
    def attach(cls, ws: Any, name: str, address: str = "auto", *,
               runtime_env: dict[str, Any] | None = None, **options: Any) -> "RayCompute":
        """A Ray cluster as a compute target, registered as ``ws.compute_targets[name]``.

        ``ws`` may be None to use the target without a workspace. Example::

            RayCompute.attach(ws, "ray-cluster", address="ray://head:10001")
            ws.compute_targets["ray-cluster"].address   # 'ray://head:10001'
        """
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("name", name, "a non-empty name for the compute target, "
                                     "e.g. 'ray-cluster'")
        if not isinstance(address, str) or not address.strip():
            raise ConfigurationError("address", address, "a Ray address: 'auto', 'local', "
                                     "'ray://head:10001' or 'head:6379'")
        target = cls(name=name, address=address.strip(), runtime_env=runtime_env, options=options)
        if ws is not None:
            targets = ws.compute_targets
            register = getattr(targets, "register", None) or getattr(targets, "add", None)
            if callable(register):
                register(target)
            else:
                targets[name] = target
        return target


_AML_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,14}[A-Za-z0-9]$")


def _node_count(name: str, value: Any, minimum: int) -> int:
    # Azure ML's samples read these from environment variables, so "4" must work like 4
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if isinstance(value, bool) or number is None or number < minimum:
        raise ConfigurationError(name, value, f"a whole number >= {minimum}")
    return number


@dataclasses.dataclass
class AmlComputeProvisioningConfiguration:
    """What ``AmlCompute.provisioning_configuration(...)`` returns; ``ComputeTarget.create``
    turns it into an :class:`AmlCompute`."""

    vm_size: str = ""
    vm_priority: str = "dedicated"
    min_nodes: int = 0
    max_nodes: int = 4
    idle_seconds_before_scaledown: int | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def create_target(self, name: str) -> "AmlCompute":
        if not isinstance(name, str) or not _AML_NAME.match(name):
            raise ComputeTargetException(
                f"compute name {name!r} is not allowed: 2 to 16 letters, digits and '-', "
                "starting with a letter and ending with a letter or digit (e.g. 'cpu-cluster')")
        return AmlCompute(name=name, max_workers=self.max_nodes, vm_size=self.vm_size,
                          vm_priority=self.vm_priority, min_nodes=self.min_nodes,
                          max_nodes=self.max_nodes)


@dataclasses.dataclass
class AmlCompute(LocalCompute):
    """Azure ML's cluster, on this machine: a local compute with ``max_nodes`` worker slots.

    Example (the original document's code runs as written)::

        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2",
                                                       min_nodes=0, max_nodes=4)
        compute_target = ComputeTarget.create(ws, "cpu-cluster", config)
        compute_target.wait_for_completion(show_output=True)   # ready at once
        ws.compute_targets["cpu-cluster"]                       # an AmlCompute

    There are no VMs: ``vm_size`` and ``min_nodes`` are kept as information, and a step on
    this target gets ``node_count x process_count_per_node`` worker processes on this machine
    (``process_count_per_node`` defaulting to the GPUs, else the cores), at most ``max_nodes``.
    For real nodes, use a Ray cluster (``RayCompute``).
    """

    vm_size: str = ""
    vm_priority: str = "dedicated"
    min_nodes: int = 0
    max_nodes: int = 4
    kind: ClassVar[str] = "amlcompute"
    backend: ClassVar[str] = "local"
    provisioning_state: ClassVar[str] = "Succeeded"

    @staticmethod
    def provisioning_configuration(vm_size: str = "", vm_priority: str = "dedicated",
                                   min_nodes: int | str = 0, max_nodes: int | str | None = None,
                                   idle_seconds_before_scaledown: int | None = None,
                                   **options: Any) -> AmlComputeProvisioningConfiguration:
        """Azure ML's cluster settings; ``max_nodes`` becomes the local worker slots.

        Example: ``AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2",
        min_nodes=0, max_nodes=4)``. Options for Azure (``admin_username``, ``vnet_name``...)
        are accepted and ignored.
        """
        max_count = _node_count("max_nodes", 4 if max_nodes is None else max_nodes, 1)
        min_count = _node_count("min_nodes", min_nodes, 0)
        if min_count > max_count:
            raise ConfigurationError("min_nodes", min_nodes, f"at most max_nodes ({max_count})")
        return AmlComputeProvisioningConfiguration(
            vm_size=str(vm_size or ""), vm_priority=vm_priority, min_nodes=min_count,
            max_nodes=max_count, idle_seconds_before_scaledown=idle_seconds_before_scaledown,
            options=dict(options))

    def wait_for_completion(self, show_output: bool = False, min_node_count: int | None = None,
                            timeout_in_minutes: int = 20, is_delete_operation: bool = False) -> None:
        """Ready at once: there is nothing to provision on this machine."""
        if show_output:
            print(f"compute {self.name!r}: local worker slots ready ({self.max_nodes}; "
                  f"vm_size {self.vm_size or '-'} is not used here)")
            print('Provisioning operation finished, operation "Succeeded"')

    def get_status(self) -> "AmlComputeStatus":
        """The cluster's state, shaped like Azure ML's (``.serialize()`` gives a dict)."""
        return AmlComputeStatus(self)

    def delete(self) -> None:
        """Remove this target from its workspace."""
        workspace = getattr(self, "workspace", None)
        if workspace is not None:
            del workspace.compute_targets[self.name]


class AmlComputeStatus:
    """``compute_target.get_status()``; ``serialize()`` is what the document prints."""

    def __init__(self, target: AmlCompute):
        self.target = target
        self.provisioning_state = "Succeeded"
        self.allocation_state = "Steady"
        self.current_node_count = target.max_nodes

    def serialize(self) -> dict[str, Any]:
        nodes = self.target.max_nodes
        return {"currentNodeCount": nodes, "targetNodeCount": nodes,
                "nodeStateCounts": {"idleNodeCount": nodes, "leavingNodeCount": 0,
                                    "preemptedNodeCount": 0, "preparingNodeCount": 0,
                                    "runningNodeCount": 0, "unusableNodeCount": 0},
                "allocationState": self.allocation_state,
                "provisioningState": self.provisioning_state, "errors": None,
                "vmSize": self.target.vm_size, "vmPriority": self.target.vm_priority,
                "scaleSettings": {"minNodeCount": self.target.min_nodes, "maxNodeCount": nodes},
                "note": f"local worker slots on this machine: {nodes}"}

    def __repr__(self) -> str:
        return f"AmlComputeStatus({self.serialize()})"
