"""A local OpenAI-compatible chat server that records what it received.

It answers from the conversation it is sent, so a test can tell whether the history
reached it: asked for a name, it repeats the name it finds in earlier turns. The model
name steers failures: `fail-500`, `slow` (sleeps past short timeouts), `garbage`, and
`leak`, whose long reply gives away an AWS access key and a private key part way through.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_NAME = re.compile(r"my name is (\w+)", re.IGNORECASE)
LEAKED_KEY_ID = "AKIAQ3ZP7XKT2M9WLB4R"
LEAKING_REPLY = (
    "Sure, here is how the deployment is set up. " * 30
    + f"It signs in with the access key {LEAKED_KEY_ID} and this key: "
    + "-----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEAvq3 -----END RSA PRIVATE KEY----- "
    + "Let me know if anything else is unclear."
)


def reply_for(messages: list[dict[str, Any]]) -> str:
    last = str(messages[-1].get("content", ""))
    if "name" in last.lower() and "?" in last:
        for message in messages[:-1]:
            found = _NAME.search(str(message.get("content", "")))
            if found:
                return f"Your name is {found.group(1)}."
        return "I do not know your name."
    return f"Noted: {last[:60]}"


@dataclass
class StubUpstream:
    """The running server: its base URL and every request body it received."""

    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_stub_upstream() -> StubUpstream:
    stub: StubUpstream

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:  # keep test output clean
            return

        def do_POST(self) -> None:  # http.server's naming
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length))
            stub.requests.append(body)
            stub.authorizations.append(self.headers.get("authorization"))
            model = body.get("model") or "stub-model"
            if model == "fail-500":
                self._send(500, {"error": {"message": "upstream broke"}})
                return
            if model == "slow":
                time.sleep(3)
            if model == "garbage":
                self._send(200, {"unexpected": True})
                return
            reply = LEAKING_REPLY if model == "leak" else reply_for(body["messages"])
            if body.get("stream"):
                self._stream(model, reply)
            else:
                self._send(
                    200,
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": 1,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": reply},
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, model: str, reply: str) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            words = reply.split(" ")
            for index, word in enumerate(words):
                piece = word if index == 0 else " " + word
                delta = {"content": piece} if index else {"role": "assistant", "content": piece}
                chunk = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            last = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub = StubUpstream(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return stub
