"""Lambda entry point: POST /v1/sessions."""

from __future__ import annotations

from mangum import Mangum

from turnwall.http.app import create_app

app = create_app({"create_session"})
handler = Mangum(app, lifespan="off")
