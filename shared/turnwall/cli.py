"""The `turnwall` command: run the local server and manage API keys.

turnwall serve [--host 127.0.0.1] [--port 8000]
turnwall keys create --tenant T --role scan|admin
turnwall keys list [--tenant T]
turnwall keys revoke KEY_ID
turnwall keys generate-encryption-key
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING, TextIO

from turnwall.errors import TurnwallError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from turnwall.runtime import Runtime

DEV_TENANT = "dev"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except TurnwallError as exc:
        _say(f"turnwall: {exc.message}", stream=sys.stderr)
        return 2
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="turnwall", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run every route as one local server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="manage API keys and encryption keys")
    key_commands = keys.add_subparsers(required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create an API key (shown once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", required=True, choices=["scan", "admin"])
    create.set_defaults(run=_keys_create)
    listing = key_commands.add_parser("list", help="list API keys (ids, never the keys)")
    listing.add_argument("--tenant")
    listing.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke an API key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_keys_revoke)
    generate = key_commands.add_parser(
        "generate-encryption-key", help="print a new Fernet key for IW_ENCRYPTION_KEYS"
    )
    generate.set_defaults(run=_generate_encryption_key)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from turnwall.auth import create_key
    from turnwall.http.app import create_app
    from turnwall.runtime import Runtime

    runtime = Runtime.build()
    if not runtime.settings.api_keys and not runtime.store.list_api_keys():
        key, _ = create_key(runtime.store, DEV_TENANT, "admin")
        _say(
            f"No API keys configured: created a development key for tenant {DEV_TENANT!r}.\n"
            f"  export TURNWALL_KEY={key}\n"
            f'  curl -H "Authorization: Bearer $TURNWALL_KEY" '
            f"http://{args.host}:{args.port}/v1/sessions"
        )
    app = create_app(runtime=runtime, offload_blocking=True)
    # uvicorn turns SIGINT and SIGTERM into a graceful shutdown and then re-raises the
    # signal to the handler it found installed: make that one a no-op, so a requested
    # stop ends with exit status 0 instead of death by signal or a KeyboardInterrupt.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    runtime.store.close()
    return 0


def _runtime() -> Runtime:
    from turnwall.runtime import Runtime

    runtime = Runtime.build()
    if runtime.settings.resolved_store_url.startswith("memory"):
        _say(
            "warning: IW_STORE_URL is memory:// - keys made here live only in this process; "
            "point IW_STORE_URL at the deployed Redis or DynamoDB store",
            stream=sys.stderr,
        )
    return runtime


def _keys_create(args: argparse.Namespace) -> int:
    from turnwall.auth import create_key

    key, record = create_key(_runtime().store, args.tenant, args.role)
    _say(
        f"{key}\n(key id {record.key_id}, tenant {record.tenant}, role {record.role}; "
        "the key is shown only now)"
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from turnwall.models import iso_utc

    _say(f"{'KEY ID':<18}{'TENANT':<24}{'ROLE':<7}{'CREATED':<26}REVOKED")
    for record in _runtime().store.list_api_keys(args.tenant):
        revoked = iso_utc(record.revoked_at) if record.revoked_at else "-"
        _say(
            f"{record.key_id:<18}{record.tenant:<24}{record.role:<7}"
            f"{iso_utc(record.created_at):<26}{revoked}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from turnwall.auth import revoke_key

    record = revoke_key(_runtime().store, args.key_id)
    _say(
        f"revoked {record.key_id} (tenant {record.tenant}); warm containers may accept it "
        "for up to IW_KEY_CACHE_SECS (default 30 s) more"
    )
    return 0


def _generate_encryption_key(_: argparse.Namespace) -> int:
    from cryptography.fernet import Fernet

    _say(Fernet.generate_key().decode())
    return 0


def _say(text: str, *, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(text + "\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
