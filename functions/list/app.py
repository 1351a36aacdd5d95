"""Lambda entry point: GET /v1/sessions."""

from __future__ import annotations

from turnwall.coldstart import init_phase

with init_phase():
    from mangum import Mangum

    from turnwall.http.app import create_app

    app = create_app({"list_sessions"})
    handler = Mangum(app, lifespan="off")
