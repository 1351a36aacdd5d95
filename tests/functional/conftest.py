"""Lambda functions loaded fresh from functions/<name>/app.py with a chosen backend."""

from __future__ import annotations

import gc
import importlib.util
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet

from tests.support.events import ROOT, ApiResponse, LambdaContext, api_event
from turnwall.settings import get_settings

if TYPE_CHECKING:
    from types import ModuleType

ADMIN_KEY = "iwk_admin_" + "A1b2C3d4" * 5
SCAN_KEY = "iwk_scan_" + "Z9y8X7w6" * 5
OTHER_TENANT_KEY = "iwk_scan_" + "Q5r4S3t2" * 5
ENCRYPTION_KEY = Fernet.generate_key().decode()
_module_ids = itertools.count()
_loaded: list[Function] = []


@dataclass
class Function:
    """One loaded Lambda function: its module and a typed way to invoke it."""

    module: ModuleType

    def invoke(
        self, method: str, path: str, *, key: str | None = ADMIN_KEY, **kwargs: Any
    ) -> ApiResponse:
        headers = dict(kwargs.pop("headers", {}) or {})
        if key is not None:
            headers.setdefault("authorization", f"Bearer {key}")
        event = api_event(method, path, headers=headers, **kwargs)
        raw = self.module.handler(event, LambdaContext())
        return ApiResponse.of(raw)

    @property
    def store(self) -> Any:
        return self.module.app.state.runtime.store


FunctionLoader = Callable[[str], Function]


def load_function(name: str) -> Function:
    """Import functions/<name>/app.py as a fresh module (a cold start)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"_fn_{name}_{next(_module_ids)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    get_settings.cache_clear()
    spec.loader.exec_module(module)
    # A Lambda container starts once and freezes what its init built (turnwall.coldstart);
    # this process starts hundreds, so the collector must still see the earlier ones.
    gc.unfreeze()
    function = Function(module)
    _loaded.append(function)
    return function


def close_loaded_functions() -> None:
    """Close the clients of every function loaded so far (store, event publisher, chat
    upstream), so their sockets are released now rather than found by the garbage
    collector during some later test."""
    while _loaded:
        module = _loaded.pop().module
        chat = None
        if hasattr(module, "cleanup"):  # the cleanup function is not an HTTP app
            holder = module.cleanup
        else:
            holder = module.app.state.runtime
            chat = getattr(module.app.state, "chat_service", None)
        holder.store.close()
        if holder.lifecycle_events is not None:
            holder.lifecycle_events.close()
        if chat is not None:
            chat.close()


def configure(monkeypatch: pytest.MonkeyPatch, store_url: str, **extra: str) -> None:
    monkeypatch.setenv("IW_STORE_URL", store_url)
    monkeypatch.setenv("IW_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    monkeypatch.setenv(
        "IW_API_KEYS",
        f"acme:admin:{ADMIN_KEY},acme:scan:{SCAN_KEY},globex:scan:{OTHER_TENANT_KEY}",
    )
    monkeypatch.setenv("IW_RATE_LIMIT_PER_MIN", "100000")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(params=["memory", "redis", "dynamodb"])
def backend_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue(f"{request.param}_store_url")
    return url


@pytest.fixture
def functions(backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FunctionLoader]:
    configure(monkeypatch, backend_url)
    yield load_function
    get_settings.cache_clear()
