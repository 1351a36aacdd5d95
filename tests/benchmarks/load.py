"""Load: many concurrent clients against `turnwall serve` on Redis or DynamoDB (moto).

    python -m tests.benchmarks.load [--backend redis|dynamodb] [--clients N] [--seconds 20]

Each client loops over create -> append (3 messages) -> history -> scan on its own
sessions for a bounded time. At the end every acknowledged append is looked up: the
report counts lost and duplicated messages, requests per second, p50/p99 per route,
and responses by status. Traffic goes to 127.0.0.1 only.

The run passes (exit 0) when nothing is lost or duplicated and no request failed: no
5xx, no timeout. The default client count suits each backend: moto's DynamoDB server
answers one request at a time, so 32 clients would queue past any sane timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
from cryptography.fernet import Fernet

from tests.e2e.conftest import start_server
from tests.support.dynamodb_server import create_table, new_client, running_moto_server
from tests.support.redis_servers import start_redis_server

KEY = "iwk_admin_" + "L" * 40
DEFAULT_CLIENTS: Final = {"redis": 32, "dynamodb": 8}
TIMEOUT_SECS: Final = 30.0
TIMED_OUT: Final = 0  # the status recorded for a request that got no response in time
DROPPED: Final = -1  # ... and for one whose connection failed (no response either)
# Below uvicorn's keep-alive timeout (5 s): a pooled connection the client still thinks
# open while the server closes it fails the request sent on it (httpx.ReadError).
KEEPALIVE_SECS: Final = 2.0


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    acknowledged: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    async def call(
        self, route: str, request: asyncio.Future[httpx.Response] | object
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            response: httpx.Response = await request  # type: ignore[misc]
        except httpx.TimeoutException:
            self.statuses[TIMED_OUT] += 1
            return httpx.Response(TIMED_OUT)
        except httpx.TransportError:
            self.statuses[DROPPED] += 1
            return httpx.Response(TIMED_OUT)
        self.latencies[route].append(time.perf_counter() - started)
        self.statuses[response.status_code] += 1
        return response

    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status <= TIMED_OUT or status >= 500)


async def client_loop(http: httpx.AsyncClient, tally: Tally, deadline: float, worker: int) -> None:
    turn = 0
    while time.monotonic() < deadline:
        session_id = f"load:{worker}:{uuid.uuid4().hex[:8]}"
        created = await tally.call(
            "create", http.post("/v1/sessions", json={"session_id": session_id})
        )
        if created.status_code != 201:
            continue
        for _ in range(3):
            turn += 1
            contents = [f"{session_id}#{turn}"]
            appended = await tally.call(
                "append",
                http.post(
                    f"/v1/sessions/{session_id}/messages",
                    json={"messages": [{"role": "user", "content": c} for c in contents]},
                ),
            )
            if appended.status_code == 200:
                tally.acknowledged[session_id] += contents
        await tally.call("history", http.get(f"/v1/sessions/{session_id}/history"))
        await tally.call(
            "scan",
            http.post(
                "/v1/scan/input",
                json={
                    "text": "Please summarise our conversation so far.",
                    "session_id": session_id,
                },
            ),
        )


async def verify(http: httpx.AsyncClient, tally: Tally) -> tuple[int, int]:
    lost = duplicated = 0
    for session_id, contents in tally.acknowledged.items():
        page = (await http.get(f"/v1/sessions/{session_id}/history", params={"limit": 1000})).json()
        stored = [m["content"] for m in page["messages"]]
        lost += sum(1 for c in contents if c not in stored)
        duplicated += len(stored) - len(set(stored))
    return lost, duplicated


async def drive(base_url: str, clients: int, seconds: float) -> bool:
    """Run the clients, print the report; whether the run passed."""
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, keepalive_expiry=KEEPALIVE_SECS)
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=TIMEOUT_SECS,
        limits=limits,
    ) as http:
        started = time.monotonic()
        await asyncio.gather(
            *(client_loop(http, tally, started + seconds, n) for n in range(clients))
        )
        elapsed = time.monotonic() - started
        lost, duplicated = await verify(http, tally)
    total = sum(len(v) for v in tally.latencies.values())
    print(f"{total} requests in {elapsed:.1f} s = {total / elapsed:.0f} req/s, {clients} clients")
    print(f"{'route':<9}{'count':>7}{'p50 ms':>9}{'p99 ms':>9}")
    for route, samples in sorted(tally.latencies.items()):
        cut = statistics.quantiles(samples, n=100)
        print(f"{route:<9}{len(samples):7d}{cut[49] * 1000:9.1f}{cut[98] * 1000:9.1f}")
    names = {TIMED_OUT: "timeout", DROPPED: "connection failed"}
    statuses = {names.get(s, s): n for s, n in sorted(tally.statuses.items())}
    print("statuses:", statuses)
    appended = sum(len(v) for v in tally.acknowledged.values())
    print(f"acknowledged messages: {appended}, lost: {lost}, duplicated: {duplicated}")
    passed = lost == duplicated == tally.failures() == 0 and appended > 0
    verdict = "pass" if passed else "FAIL"
    print(f"verdict: {verdict} (0 lost, 0 duplicated, no 5xx, timeout or failed connection)")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["redis", "dynamodb"], default="redis")
    parser.add_argument(
        "--clients", type=int, help="concurrent clients (default: 32 on Redis, 8 on DynamoDB)"
    )
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    clients: int = args.clients or DEFAULT_CLIENTS[args.backend]
    with ExitStack() as stack:
        if args.backend == "redis":
            redis_server = start_redis_server(Path(tempfile.mkdtemp()) / "redis")
            stack.callback(redis_server.stop)
            store_url = redis_server.url
        else:
            endpoint = stack.enter_context(running_moto_server())
            table = create_table(new_client(endpoint))
            store_url = f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}"
        server = start_server(
            {
                "IW_STORE_URL": store_url,
                "IW_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "IW_API_KEYS": f"load:admin:{KEY}",
                "IW_RATE_LIMIT_PER_MIN": "100000000",
            }
        )
        stack.callback(server.stop)
        print(f"backend: {args.backend}")
        passed = asyncio.run(drive(server.base_url, clients, args.seconds))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
