"""Lambda entry point: POST /v1/chat/completions (OpenAI-compatible, with session memory)."""

from __future__ import annotations

from turnwall.coldstart import init_phase

with init_phase():
    from mangum import Mangum

    from turnwall.http.app import create_app

    app = create_app({"chat_completions"})
    handler = Mangum(app, lifespan="off")
