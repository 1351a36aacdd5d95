"""Lambda entry point: POST /v1/sessions/{session_id}/messages."""

from __future__ import annotations

from turnwall.coldstart import init_phase

with init_phase():
    from mangum import Mangum

    from turnwall.http.app import create_app

    app = create_app({"append_messages"})
    handler = Mangum(app, lifespan="off")
