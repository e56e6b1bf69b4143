"""Server-sent events for the live views: the state of a run or a step whenever it changes,
until it ends. Streams end after ``STREAM_SECONDS`` (the browser reconnects) and when the server
stops (``closing``), so none is cut mid-event.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Callable

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from parallelrun.errors import WorkspaceError
from parallelrun.ui.state import NotFound

STREAM_SECONDS = 600.0   # an event stream ends after this; the browser reconnects
KEEP_ALIVE_SECONDS = 15.0
#: how the event endpoints describe their answer in the OpenAPI document
EVENT_STREAM = {"content": {"text/event-stream": {}}}


def stream(request: Request, read: Callable[[], dict], done: Callable[[dict], bool],
           every: float, closing: threading.Event) -> StreamingResponse:
    """``update`` events with ``read()`` (polled every ``every`` seconds, sent when it changed),
    ``end`` once ``done`` says so, ``gone`` if what it reads disappears."""
    async def events():
        deadline = time.monotonic() + STREAM_SECONDS
        last_text, last_sent = None, time.monotonic()
        yield "retry: 2000\n\n"
        while time.monotonic() < deadline and not closing.is_set():
            if await request.is_disconnected():
                return
            try:
                data = await run_in_threadpool(read)
            except (NotFound, WorkspaceError):
                yield "event: gone\ndata: {}\n\n"
                return
            text = json.dumps(data, default=str, separators=(",", ":"))
            if text != last_text:
                yield f"event: update\ndata: {text}\n\n"
                last_text, last_sent = text, time.monotonic()
            elif time.monotonic() - last_sent > KEEP_ALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            if done(data):
                yield "event: end\ndata: {}\n\n"
                return
            await asyncio.sleep(every)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
