"""Lambda entry point: DELETE /v1/sessions/{session_id}."""

from __future__ import annotations

from mangum import Mangum

from turnwall.http.app import create_app

app = create_app({"delete_session"})
handler = Mangum(app, lifespan="off")
