"""The per-container components: built once per Lambda container or server process."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from turnwall.auth import Authenticator, parse_bootstrap_keys
from turnwall.lifecycle_events import build_lifecycle_events
from turnwall.ratelimit import RateLimiter
from turnwall.settings import Settings, get_settings
from turnwall.stores import build_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from turnwall.lifecycle_events import LifecycleEvents
    from turnwall.stores.base import SessionStore


class Runtime(NamedTuple):
    """Settings, store, authenticator, limiter and lifecycle events shared by every request.

    ``lifecycle_events`` is None unless IW_EVENT_BUS_NAME names a bus.
    """

    settings: Settings
    store: SessionStore
    authenticator: Authenticator
    rate_limiter: RateLimiter
    lifecycle_events: LifecycleEvents | None = None

    @classmethod
    def build(
        cls,
        settings: Settings | None = None,
        *,
        store: SessionStore | None = None,
        clock: Callable[[], float] | None = None,
        lifecycle_events: LifecycleEvents | None = None,
    ) -> Runtime:
        """Wire the components; an explicit store, publisher or settings beats the
        environment.

        Raises:
            ConfigurationError: the settings cannot work (refuse to start).
        """
        settings = settings or get_settings()
        store = store or build_store(settings, clock=clock)
        bootstrap = parse_bootstrap_keys(settings.api_keys, store.clock())
        return cls(
            settings=settings,
            store=store,
            authenticator=Authenticator(store, bootstrap, cache_secs=settings.key_cache_secs),
            rate_limiter=RateLimiter(store, settings.rate_limit_per_min),
            lifecycle_events=lifecycle_events or build_lifecycle_events(settings),
        )
