"""Lambda entry point: GET /v1/health."""

from __future__ import annotations

from mangum import Mangum

from turnwall.http.app import create_app

app = create_app({"health"})
handler = Mangum(app, lifespan="off")
