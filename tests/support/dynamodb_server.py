"""moto's DynamoDB server for the tests, started once per test session.

It listens on a free port of 127.0.0.1 and every client here carries fake credentials
(also put in the environment for code configured by it), so no test can reach real
AWS. Tables are always built from template.yaml through the same helper as the CLI.

moto is made to behave like DynamoDB where the store depends on it, and fast enough:

- it answers one request at a time, since its transactions are not atomic under
  concurrent requests (`_serialized`);
- a transaction checks its conditions before moto snapshots the table, and moto takes
  one snapshot per transaction instead of one per action (`_fast_transact_write_items`);
- each test of the store factory gets a table of its own, since that snapshot still
  costs time in proportion to the table (stream records included); tests use their
  own tenant anyway, so sharing would be safe, only slower with every test before.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import ModuleType

    from mypy_boto3_dynamodb import DynamoDBClient

    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from turnwall.crypto import Cipher
    from turnwall.stores.base import SessionStore
    from turnwall.validation import Limits

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Settings that could point a client at a real account or endpoint.
_REAL_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def _serialized(
    app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]],
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    # moto checks a transaction's conditions and applies it without any lock, and
    # undoes a cancelled one by restoring its snapshot of the table, which also
    # undoes whatever other threads wrote meanwhile. DynamoDB runs transactions and
    # conditional writes atomically; answering one request at a time restores that.
    lock = threading.Lock()

    def app_one_at_a_time(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with lock:
            response = app(environ, start_response)
            try:
                return list(response)
            finally:
                if hasattr(response, "close"):
                    response.close()

    return app_one_at_a_time


def _fast_transact_write_items(models: ModuleType) -> Callable[..., None]:
    """moto's transact_write_items with the same answers at a bearable cost.

    moto deep-copies the whole table, stream records included, once per *action*
    before it checks any condition: a 100-message append on a table of 2,000 items
    took ten seconds, and each losing commit of a contended session cost as much as
    a winning one. This checks the conditions first, with moto's own evaluator (the
    one-at-a-time server keeps that atomic), and lets moto take one snapshot per table.
    Anything unexpected falls back to moto's unchanged path.
    """
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import TransactionCanceledException

    original, real_copy = models.DynamoDBBackend.transact_write_items, models.copy

    def failed_conditions(
        backend: Any, transact_items: list[dict[str, Any]]
    ) -> list[tuple[str | None, str | None, None]]:
        reasons: list[tuple[str | None, str | None, None]] = []
        for action in transact_items:
            ((kind, operation),) = action.items()
            condition = operation.get("ConditionExpression")
            if condition is None:
                reasons.append((None, None, None))
                continue
            table = backend.get_table(operation["TableName"])
            if kind == "Put":
                key_names = [table.hash_key_attr, table.range_key_attr]
                key = {name: operation["Item"][name] for name in key_names if name}
            else:
                key = operation["Key"]
            holds = get_filter_expression(
                condition,
                operation.get("ExpressionAttributeNames"),
                operation.get("ExpressionAttributeValues"),
            ).expr(backend.get_item(operation["TableName"], key))
            reasons.append(
                (None, None, None)
                if holds
                else ("ConditionalCheckFailed", "The conditional request failed", None)
            )
        return reasons if any(code for code, _, _ in reasons) else []

    lock = threading.Lock()  # the server is one-at-a-time already; in-process mocks not

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with lock:
            transact(self, transact_items)

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            reasons = failed_conditions(self, transact_items)
        except Exception:
            reasons = []
        if reasons:
            raise TransactionCanceledException(reasons)
        snapshots: dict[int, Any] = {}

        def deepcopy_tables_once(value: Any, memo: Any = None) -> Any:
            if not isinstance(value, models.Table):
                return real_copy.deepcopy(value, memo)
            if id(value) not in snapshots:
                snapshots[id(value)] = real_copy.deepcopy(value, memo)
            return snapshots[id(value)]

        models.copy = SimpleNamespace(deepcopy=deepcopy_tables_once, copy=real_copy.copy)
        try:
            original(self, transact_items)
        finally:
            models.copy = real_copy

    return transact_write_items


def _start_moto_server() -> Any:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class SerializedMotoServer(ThreadedMotoServer):  # type: ignore[misc]
        """moto's ThreadedMotoServer with its app behind `_serialized`."""

        def _server_entry(self) -> None:
            app = _serialized(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

        def stop(self) -> None:
            super().stop()
            self._server.server_close()

    server = SerializedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


def new_client(endpoint_url: str) -> DynamoDBClient:
    """A client of the test server with the store's settings and fake credentials.

    Only the read timeout is longer: under the 16-thread contract test the requests
    queue up at the one-at-a-time server, and moto ignores ClientRequestToken, so a
    commit retried after a timeout would apply twice, which DynamoDB would not do.
    """
    import boto3
    from botocore.config import Config

    from turnwall.stores.dynamodb import CLIENT_CONFIG

    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=REGION,
        config=CLIENT_CONFIG.merge(Config(read_timeout=30)),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )


def create_table(client: DynamoDBClient, prefix: str = "sessions") -> str:
    """A new table built from template.yaml; returns its name."""
    from turnwall.stores.dynamodb.table import create_table_from_template

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    create_table_from_template(client, name)
    return name


# ------------------------------------------------------------------------ fixtures


@contextlib.contextmanager
def running_moto_server() -> Iterator[str]:
    """Run a private moto server; yields its URL, with fake AWS credentials in the
    environment meanwhile (for the fixtures and the benchmark scripts)."""
    werkzeug_logger = logging.getLogger("werkzeug")
    level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)  # one INFO line per request otherwise
    with pytest.MonkeyPatch.context() as environment:
        for name in _REAL_AWS_ENV:
            environment.delenv(name, raising=False)
        for name, value in FAKE_AWS_ENV.items():
            environment.setenv(name, value)
        from moto.dynamodb import models

        environment.setattr(
            models.DynamoDBBackend, "transact_write_items", _fast_transact_write_items(models)
        )
        server = _start_moto_server()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            werkzeug_logger.setLevel(level)


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """The URL of a private moto server; fake AWS credentials in the environment."""
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def dynamodb_client(dynamodb_endpoint: str) -> Iterator[DynamoDBClient]:
    client = new_client(dynamodb_endpoint)
    yield client
    client.close()


def store_url(dynamodb_endpoint: str, table: str) -> str:
    """``dynamodb://TABLE?region=...&endpoint_url=...`` for code configured by
    IW_STORE_URL (the Lambda functions). The long read timeout keeps botocore from
    retrying a slow commit, which moto would apply twice, and lets a slow machine's moto
    answer a query of thousands of items."""
    return f"dynamodb://{table}?region={REGION}&endpoint_url={dynamodb_endpoint}&read_timeout=30"


@pytest.fixture(scope="session")
def dynamodb_store_url(dynamodb_endpoint: str, dynamodb_client: DynamoDBClient) -> str:
    """`store_url` of one table for the whole run."""
    return store_url(dynamodb_endpoint, create_table(dynamodb_client, "shared"))


@pytest.fixture
def dynamodb_table(dynamodb_client: DynamoDBClient) -> Iterator[str]:
    """A fresh table from template.yaml for one test, dropped afterwards."""
    name = create_table(dynamodb_client)
    yield name
    dynamodb_client.delete_table(TableName=name)


@pytest.fixture
def dynamodb_store_factory(
    clock: FakeClock, cipher: Cipher, dynamodb_client: DynamoDBClient, dynamodb_table: str
) -> Iterator[StoreFactory]:
    """Stores made by one factory share one table, like clients of one deployment."""
    from turnwall.stores.dynamodb import DynamoDBSessionStore

    default_cipher = cipher

    def make(*, cipher: Cipher | None = None, limits: Limits | None = None) -> SessionStore:
        return DynamoDBSessionStore(
            dynamodb_table, cipher or default_cipher, limits, clock, boto3_client=dynamodb_client
        )

    yield make
