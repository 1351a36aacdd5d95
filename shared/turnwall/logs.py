"""Structured JSON logs (AWS Lambda Powertools), one logger for the whole service.

Level comes from POWERTOOLS_LOG_LEVEL (or LOG_LEVEL); every line carries the request id
of the request that wrote it.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="turnwall")
