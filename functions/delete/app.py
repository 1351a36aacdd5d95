"""Lambda entry point: DELETE /v1/sessions/{session_id} and DELETE /v1/sessions?prefix=."""

from __future__ import annotations

from turnwall.coldstart import init_phase

with init_phase():
    from mangum import Mangum

    from turnwall.http.app import create_app

    app = create_app({"delete_session", "delete_sessions"})
    handler = Mangum(app, lifespan="off")
