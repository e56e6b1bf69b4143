"""What the routes share for one app: the workspace, its read model and the caches kept
between requests. Built once by ``create_app``, kept in ``app.state.context`` and handed to
routes as a dependency (``ctx: Ctx``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from parallelrun.ui import logfiles
from parallelrun.ui.failures import IndexCache
from parallelrun.ui.state import MAX_LIMIT, WorkspaceView
from parallelrun.ui.throughput import ThroughputCache


@dataclass
class AppContext:
    """One dashboard's state: ``view`` reads the catalog; the caches keep log folder listings,
    failure indexes and throughput samples between requests."""
    workspace: Any
    cancel_token: str | None = None
    #: seconds between reads of an event stream
    poll_seconds: float = 1.0
    view: WorkspaceView = field(init=False)
    folders: logfiles.FolderCache = field(default_factory=logfiles.FolderCache)
    failures: IndexCache = field(default_factory=IndexCache)
    history: ThroughputCache = field(default_factory=ThroughputCache)
    #: set when the server stops, so open event streams end instead of being cut
    closing: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self.view = WorkspaceView(self.workspace)


async def app_context(request: Request) -> AppContext:
    """The context of the app serving ``request`` (a dependency)."""
    return request.app.state.context


Ctx = Annotated[AppContext, Depends(app_context)]
#: a page of a list: how many rows (``limit: Limit = 50``) from which one (``offset: Offset = 0``)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]
