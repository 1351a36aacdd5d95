"""A Lambda container's init phase, run without the cyclic garbage collector.

Importing FastAPI, pydantic, redis-py and turnwall leaves 75,000 to 100,000 long-lived
objects the collector tracks, and the collector, triggered by allocation counts, walks
them again and again: about a seventh of a session function's cold start. Nothing built
during init is garbage worth finding, so the collector stays off until the handler
exists, and everything init built is then frozen (`gc.freeze`): the warm
invocations' full collections skip it, and enabling the collector again does not
set off one full collection of it on the first request.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def init_phase() -> Iterator[None]:
    """Build a function's handler with the collector off; freeze what was built."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
