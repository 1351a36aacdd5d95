"""Lambda function costs against bare FastAPI + Mangum, measured in the same run.

    python -m tests.benchmarks.bench_lambda

1. Cold init: a fresh interpreter imports functions/<op>/app.py (Redis configured) and
   builds the app and handler; the baseline is a bare FastAPI app with one async route
   behind Mangum. Median of several fresh processes each. Target ratio <= 1.25.
2. Warm GET: one handler instance invoked many times with an API Gateway v2 event for
   GET /v1/sessions/{id} on a private redis-server; the baseline is a bare async route
   doing a raw redis GET of the same session's stored bytes and one Fernet decrypt.
   Target ratio <= 1.5.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet

from tests.support.events import ROOT, LambdaContext, api_event
from tests.support.redis_servers import start_redis_server

if TYPE_CHECKING:
    from collections.abc import Callable

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
WARM_CALLS = 6000
WARM_ROUNDS = 12
KEY = "iwk_admin_" + "B" * 40

_COLD_FUNCTION = """
import time, importlib.util, sys
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("fn", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert module.handler is not None
print(time.perf_counter() - started)
"""
_COLD_BARE = """
import time
started = time.perf_counter()
from fastapi import FastAPI
from mangum import Mangum
app = FastAPI()
@app.get("/v1/sessions/{session_id}")
async def get_session(session_id: str) -> dict:
    return {"session_id": session_id}
handler = Mangum(app, lifespan="off")
print(time.perf_counter() - started)
"""


def cold_seconds(script: str, *args: str, env: dict[str, str]) -> float:
    runs = []
    for _ in range(COLD_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", script, *args],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(float(out.strip().splitlines()[-1]))
    return statistics.median(runs)


def per_call_us(fn: Callable[..., Any], event: dict[str, Any], calls: int) -> float:
    context = LambdaContext()
    started = time.perf_counter()
    for _ in range(calls):
        response = fn(event, context)
    assert response["statusCode"] == 200, response
    return (time.perf_counter() - started) / calls * 1e6


def interleaved(handlers: list[Callable[..., Any]], event: dict[str, Any]) -> list[float]:
    """Median per-call time of each handler over rounds that alternate between them, so
    a noisy neighbour slows every handler alike."""
    for handler in handlers:
        per_call_us(handler, event, 300)  # warm up
    rounds: list[list[float]] = [[] for _ in handlers]
    for _ in range(WARM_ROUNDS):
        for index, handler in enumerate(handlers):
            rounds[index].append(per_call_us(handler, event, WARM_CALLS // WARM_ROUNDS))
    return [statistics.median(samples) for samples in rounds]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="turnwall-bench-"))
    server = start_redis_server(workdir / "redis")
    encryption_key = Fernet.generate_key().decode()
    env = {
        **os.environ,
        "IW_STORE_URL": server.url,
        "IW_ENCRYPTION_KEYS": encryption_key,
        "IW_API_KEYS": f"bench:admin:{KEY}",
        "IW_RATE_LIMIT_PER_MIN": "100000000",
        "PYTHONPATH": str(ROOT),
    }
    try:
        print(f"cold init, median of {COLD_RUNS} fresh processes (Redis configured)")
        bare = cold_seconds(_COLD_BARE, env=env)
        print(f"  {'bare FastAPI+Mangum':<28}{bare * 1000:8.1f} ms   1.00x")
        for function in sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py")):
            seconds = cold_seconds(
                _COLD_FUNCTION, str(ROOT / "functions" / function / "app.py"), env=env
            )
            print(f"  {function:<28}{seconds * 1000:8.1f} ms   {seconds / bare:.2f}x")
        warm(env, server.url, encryption_key)
    finally:
        server.stop()


def warm(env: dict[str, str], redis_url: str, encryption_key: str) -> None:
    os.environ.update(env)
    from fastapi import FastAPI
    from mangum import Mangum
    from redis import Redis

    from turnwall.http.app import create_app

    app = create_app({"get_session"})
    handler = Mangum(app, lifespan="off")
    store = app.state.runtime.store
    store.create_session("bench", "user:alice:plan", metadata={"app": "bench", "n": 1})
    event = api_event(
        "GET", "/v1/sessions/user:alice:plan", headers={"authorization": f"Bearer {KEY}"}
    )

    raw = Redis.from_url(redis_url)
    fernet = Fernet(encryption_key)
    token = fernet.encrypt(b'{"app":"bench","n":1}')
    raw.set("bench:raw", token)
    bare = FastAPI()

    @bare.get("/v1/sessions/{session_id}")
    async def get_session(session_id: str) -> dict[str, object]:
        value = raw.get("bench:raw")
        assert isinstance(value, bytes)
        return {"session_id": session_id, "metadata": fernet.decrypt(value).decode()}

    bare_handler = Mangum(bare, lifespan="off")
    baseline, ours = interleaved([bare_handler, handler], event)
    print(
        f"\nwarm GET through one handler instance, {WARM_CALLS} invocations each, "
        f"median of {WARM_ROUNDS} interleaved rounds"
    )
    print(f"  {'bare route+redis GET+decrypt':<28}{baseline:8.1f} us   1.00x")
    print(f"  {'turnwall get function':<28}{ours:8.1f} us   {ours / baseline:.2f}x")
    raw.close()


if __name__ == "__main__":
    main()
