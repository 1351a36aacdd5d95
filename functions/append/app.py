"""Lambda entry point: POST /v1/sessions/{session_id}/messages."""

from __future__ import annotations

from mangum import Mangum

from turnwall.http.app import create_app

app = create_app({"append_messages"})
handler = Mangum(app, lifespan="off")
