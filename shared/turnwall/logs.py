"""Structured JSON logs (AWS Lambda Powertools), one logger for the whole service.

`logger` is the standard library logger "turnwall", at the level POWERTOOLS_LOG_LEVEL
(or LOG_LEVEL) names, INFO by default; every line carries the request id of the
request that wrote it. Powertools' `Logger` takes it over with the first record that
passes the level: the HTTP functions write only on faults (and per request at DEBUG),
so a cold start does not import Powertools (with its metrics and tracing) for nothing.
`powertools_logger()` hands the configured Powertools logger to code that needs its
decorators, such as the cleanup function's `inject_lambda_context`.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

SERVICE: Final = "turnwall"

logger = logging.getLogger(SERVICE)


def powertools_logger() -> Logger:
    """The Powertools logger over `logger` (configured on the first call)."""
    from aws_lambda_powertools import Logger

    logger.removeHandler(_HANDS_OVER)
    return Logger(service=SERVICE)  # reuses logging.getLogger(SERVICE), once configured


class _HandOverToPowertools(logging.Handler):
    """Configures Powertools at the first record and passes the record on to it."""

    def emit(self, record: logging.LogRecord) -> None:
        powertools_logger()
        for handler in logger.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


_HANDS_OVER: Final = _HandOverToPowertools()
if not logger.handlers:
    logger.setLevel(
        (os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO").upper()
    )
    logger.addHandler(_HANDS_OVER)
