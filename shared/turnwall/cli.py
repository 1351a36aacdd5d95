"""The `turnwall` command: run the local server and manage API keys.

turnwall serve [--host 127.0.0.1] [--port 8000]
turnwall keys create --tenant T --role scan|admin
turnwall keys list [--tenant T]
turnwall keys revoke KEY_ID
turnwall keys generate-encryption-key
turnwall keys rotate-encryption [--batch N] [--state FILE]
turnwall export [--tenant T] [--prefix P] [--output FILE]
turnwall import [--input FILE]
turnwall eval DIRECTORY [--profile P] [--no-baseline]
turnwall create-table NAME [--endpoint-url URL] [--region R]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

from turnwall.errors import ConfigurationError, TurnwallError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from turnwall.runtime import Runtime

DEV_TENANT = "dev"
ROTATE_STATE_FILE = ".turnwall-rotate-cursor"
_PROGRESS_WIDTH = 24


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        if arguments[:1] == ["eval"]:
            # The evaluation parses its own arguments, -h included: argparse cannot pass
            # an option such as --help through a sub-command untouched.
            return _eval(arguments[1:])
        args = parser.parse_args(arguments)
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
    rotate = key_commands.add_parser(
        "rotate-encryption",
        help="re-encrypt stored sessions under the first key of IW_ENCRYPTION_KEYS",
    )
    rotate.add_argument(
        "--batch", type=_positive_int, default=100, help="sessions per step (default 100)"
    )
    rotate.add_argument(
        "--state",
        type=Path,
        default=Path(ROTATE_STATE_FILE),
        help=f"where an interrupted run resumes from (default ./{ROTATE_STATE_FILE})",
    )
    rotate.set_defaults(run=_keys_rotate_encryption)

    # Listed for `turnwall -h` only: main() hands `eval ...` to the evaluation's parser.
    commands.add_parser(
        "eval",
        help="measure the detectors on labelled data (see ../shared/eval/README.md)",
        add_help=False,
    )

    export = commands.add_parser(
        "export", help="write every live session of the store (IW_STORE_URL) as JSON Lines"
    )
    export.add_argument("--tenant", help="only this tenant's sessions")
    export.add_argument("--prefix", default="", help="only sessions whose ids start so")
    export.add_argument("--output", type=Path, help="a file (default: standard output)")
    export.set_defaults(run=_export)
    restore = commands.add_parser(
        "import", help="store the sessions of a `turnwall export` in IW_STORE_URL"
    )
    restore.add_argument("--input", type=Path, help="a file (default: standard input)")
    restore.set_defaults(run=_import)

    table = commands.add_parser(
        "create-table", help="create the DynamoDB table exactly as template.yaml defines it"
    )
    table.add_argument("name")
    table.add_argument("--endpoint-url", help="e.g. http://localhost:8000 for DynamoDB Local")
    table.add_argument("--region", default="us-east-1")
    table.set_defaults(run=_create_table)
    return parser


def _eval(arguments: list[str]) -> int:
    from turnwall.evaluation import main as evaluate

    return evaluate(arguments)


def _export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    store = _runtime().store
    written = unreadable = 0
    with (
        _opened(args.output, "w", sys.stdout) as out,
        tqdm(desc="exported", unit=" sessions", file=sys.stderr, disable=None) as progress,
    ):
        cursor = None
        while True:
            page = store.export_sessions(cursor=cursor, tenant=args.tenant, prefix=args.prefix)
            for document in page.sessions:
                out.write(json.dumps(document, ensure_ascii=False) + "\n")
            written += len(page.sessions)
            unreadable += page.unreadable
            progress.update(len(page.sessions))
            cursor = page.next_cursor
            if cursor is None:
                break
    store.close()
    _say(f"exported {written} sessions", stream=sys.stderr)
    if unreadable:
        _say(
            f"turnwall: {unreadable} sessions could not be decrypted with any configured key "
            "and were not exported (see the log)",
            stream=sys.stderr,
        )
        return 1
    return 0


def _import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from turnwall.errors import SessionExists, ValidationFailed

    store = _runtime().store
    imported, existing, refused = 0, 0, 0
    with (
        _opened(args.input, "r", sys.stdin) as source,
        tqdm(desc="imported", unit=" sessions", file=sys.stderr, disable=None) as progress,
    ):
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                store.import_session(json.loads(line))
                imported += 1
            except SessionExists:
                existing += 1
            except (ValueError, ValidationFailed) as exc:
                refused += 1
                message = exc.message if isinstance(exc, ValidationFailed) else str(exc)
                _say(f"turnwall: line {number} not imported: {message}", stream=sys.stderr)
            progress.update()
    store.close()
    _say(
        f"imported {imported} sessions; {existing} already existed and were left as they are; "
        f"{refused} refused",
        stream=sys.stderr,
    )
    return 1 if refused else 0


@contextlib.contextmanager
def _opened(path: Path | None, mode: str, default: TextIO) -> Iterator[IO[str]]:
    """The file at `path` (closed afterwards), or `default` when None."""
    if path is None:
        yield default
        return
    with path.open(mode, encoding="utf-8") as stream:
        yield stream


def _create_table(args: argparse.Namespace) -> int:
    import boto3

    from turnwall.stores.dynamodb.table import create_table_from_template

    client = boto3.client("dynamodb", region_name=args.region, endpoint_url=args.endpoint_url)
    create_table_from_template(client, args.name)
    _say(f"created table {args.name}; use IW_STORE_URL=dynamodb://{args.name}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from turnwall.auth import create_key
    from turnwall.http.app import create_app
    from turnwall.http.server import run_server
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
    app = create_app(
        runtime=runtime,
        offload_blocking=True,
        body_timeout_secs=runtime.settings.body_timeout_secs,
    )
    sweeper = _start_sweeper(runtime)
    store = runtime.settings.resolved_store_url.split(":", 1)[0]  # never the credentials
    _say(
        f"Turnwall listening on http://{args.host}:{args.port} ({store} store; "
        f"API docs at http://{args.host}:{args.port}/docs; Ctrl-C stops)"
    )
    # uvicorn turns SIGINT and SIGTERM into a graceful shutdown and then re-raises the
    # signal to the handler it found installed: make that one a no-op, so a requested
    # stop ends with exit status 0 instead of death by signal or a KeyboardInterrupt.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    run_server(app, runtime.settings, args.host, args.port)
    sweeper.set()
    runtime.store.close()
    return 0


def _start_sweeper(runtime: Runtime, every_secs: float = 60.0) -> threading.Event:
    """Sweep expired sessions in the background, as the scheduled cleanup does when
    deployed, so a long-running local server does not keep them in memory forever."""
    stop = threading.Event()

    def run() -> None:
        cursor = None
        while not stop.wait(every_secs):
            try:
                cursor = runtime.store.sweep(cursor=cursor).next_cursor
            except TurnwallError as exc:  # a backend hiccup: try again next round
                _say(f"turnwall: sweep failed: {exc.message}", stream=sys.stderr)

    threading.Thread(target=run, name="turnwall-sweeper", daemon=True).start()
    return stop


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


@dataclass
class _RotationProgress:
    """What the state file keeps between runs: where to resume, and the totals so far."""

    cursor: str | None = None
    sessions: int = 0
    values_resealed: int = 0
    values_unreadable: int = 0
    steps: int = 0

    @classmethod
    def load(cls, path: Path) -> _RotationProgress:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls()
        try:
            fields = json.loads(text)
            progress = cls(**fields)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"the rotation state file {path} is unreadable; delete it to start over"
            ) from exc
        if not isinstance(progress.cursor, str):
            raise ConfigurationError(
                f"the rotation state file {path} holds no cursor; delete it to start over"
            )
        return progress

    def save(self, path: Path) -> None:
        # Write then rename, so an interrupt never leaves half a state file behind.
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(json.dumps(asdict(self)))
        os.replace(partial, path)


def _keys_rotate_encryption(args: argparse.Namespace) -> int:
    state_path: Path = args.state
    progress = _RotationProgress.load(state_path)
    if progress.cursor is not None:
        _say(f"resuming the rotation saved in {state_path}", stream=sys.stderr)
    store = _runtime().store
    try:
        while True:
            report = store.reencrypt(cursor=progress.cursor, max_sessions=args.batch)
            progress.cursor = report.next_cursor
            progress.sessions += report.sessions
            progress.values_resealed += report.values_resealed
            progress.values_unreadable += report.values_unreadable
            progress.steps += 1
            _show_progress(progress)
            if report.next_cursor is None:
                break
            progress.save(state_path)
    finally:
        store.close()
    sys.stderr.write("\n")
    state_path.unlink(missing_ok=True)
    _say(
        f"re-encrypted {progress.values_resealed} values in {progress.sessions} sessions "
        "under the newest key"
    )
    if progress.values_unreadable:
        _say(
            f"turnwall: {progress.values_unreadable} stored values could not be decrypted with "
            "any configured key and were left as they are (see the log)",
            stream=sys.stderr,
        )
        return 1
    return 0


def _show_progress(progress: _RotationProgress) -> None:
    # No backend can count its sessions cheaply, so there is no total to fill towards:
    # the bar advances one mark per step, wraps around, and is full once the pass ends.
    finished = progress.cursor is None
    done = _PROGRESS_WIDTH if finished else progress.steps % _PROGRESS_WIDTH
    bar = "#" * done + "." * (_PROGRESS_WIDTH - done)
    status = "done" if finished else "working"
    sys.stderr.write(
        f"\r[{bar}] {progress.sessions} sessions, {progress.values_resealed} values resealed"
        f" ({status})"
    )
    sys.stderr.flush()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _say(text: str, *, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(text + "\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
