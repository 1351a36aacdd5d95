"""The local server (`turnwall serve`) in a subprocess, for tests over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.functional.conftest import ADMIN_KEY, ENCRYPTION_KEY, OTHER_TENANT_KEY

if TYPE_CHECKING:
    from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


SERVER_RATE_LIMIT = 100_000  # the fuzzer must reach the routes, not the limiter


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    output: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=10)


def start_server(env_overrides: dict[str, str]) -> Server:
    """Start `turnwall serve` on a free port; its output goes to a file (a pipe nobody
    reads would fill up and stall the server)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IW_")}
    env.update(env_overrides)
    output = Path(tempfile.mkdtemp(prefix="turnwall-serve-")) / "output.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "turnwall.cli", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", output)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{output.read_text()}")
        try:
            if httpx.get(f"{server.base_url}/v1/health", timeout=0.5).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("server did not become healthy within 20 s")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server(
        {
            "IW_API_KEYS": f"acme:admin:{ADMIN_KEY},globex:scan:{OTHER_TENANT_KEY}",
            "IW_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "IW_RATE_LIMIT_PER_MIN": str(SERVER_RATE_LIMIT),
        }
    )
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5
    ) as http:
        yield http
