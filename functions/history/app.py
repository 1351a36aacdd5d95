"""Lambda entry point: GET /v1/sessions/{session_id}/history."""

from __future__ import annotations

from turnwall.coldstart import init_phase

with init_phase():
    from mangum import Mangum

    from turnwall.http.app import create_app

    app = create_app({"get_history"})
    handler = Mangum(app, lifespan="off")
