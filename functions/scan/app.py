"""Lambda entry point: POST /v1/scan/input, POST /v1/scan/output and POST /v1/analyze."""

from __future__ import annotations

from turnwall.coldstart import init_phase

with init_phase():
    from mangum import Mangum

    from turnwall.http.app import create_app

    app = create_app({"scan_input", "scan_output", "analyze"})
    handler = Mangum(app, lifespan="off")
