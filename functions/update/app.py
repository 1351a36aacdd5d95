"""Lambda entry point: PATCH /v1/sessions/{session_id} and POST .../{session_id}/end."""

from __future__ import annotations

from turnwall.coldstart import init_phase

with init_phase():
    from mangum import Mangum

    from turnwall.http.app import create_app

    app = create_app({"update_session", "end_session"})
    handler = Mangum(app, lifespan="off")
