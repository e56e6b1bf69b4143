"""Compute targets: named places where jobs run, each mapped to a backend by name.

A compute target is a small record (name, kind, backend options) that a workspace can store
and that ``run_job`` turns into a backend through two attributes: ``backend`` (a name in
``parallelrun.backends.BACKENDS``) and ``backend_options``. Kinds register in ``COMPUTE_KINDS``
so a workspace can rebuild them from its catalog.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

COMPUTE_KINDS: dict[str, type["ComputeTarget"]] = {}


@dataclasses.dataclass
class ComputeTarget:
    """Base of compute targets. ``kind`` names the subclass in the workspace catalog."""

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


@dataclasses.dataclass
class LocalCompute(ComputeTarget):
    """Worker processes on this machine (the default, ``ws.compute_targets["local"]``).

    ``max_workers`` caps ``process_count_per_node`` when set (what ``AmlCompute``'s node
    counts turn into on one machine).
    """

    max_workers: int | None = None
    kind: ClassVar[str] = "local"
    backend: ClassVar[str] = "local"
