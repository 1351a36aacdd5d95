"""What `turnwall serve` adds around the app: uvicorn with deadlines for slow clients.

uvicorn bounds the idle time between keep-alive requests but not the time a client
takes to send a request's headers, so a client trickling one byte a second holds a
connection (and a file descriptor) forever. `HeaderDeadlineProtocol` closes a
connection whose request headers are not complete within the deadline; the body's
deadline is kept by `RequestContextMiddleware`, which reads the body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    import asyncio

    from fastapi import FastAPI

    from turnwall.settings import Settings


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    header_timeout_secs: ClassVar[float] = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers arrived
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        # Armed first: the call below may start a pipelined request, which disarms it.
        self._arm_header_deadline()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_secs, self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def run_server(app: FastAPI, settings: Settings, host: str, port: int) -> None:
    """Serve `app` until SIGINT or SIGTERM, trusting forwarded headers only from the
    configured proxies."""
    protocol = type(
        "ConfiguredHeaderDeadlineProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout_secs": settings.header_timeout_secs},
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol,
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="warning",
        access_log=False,
    )
