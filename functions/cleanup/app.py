"""Lambda entry point: cleanup after sessions (DynamoDB stream TTL deletions, schedule).

Not an HTTP function: the DynamoDB stream mapping (filtered to TTL deletions of
session items) and the EventBridge schedule invoke it; `turnwall.cleanup` does the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from turnwall.coldstart import init_phase

with init_phase():
    from turnwall.cleanup import Cleanup, is_scheduled_event, is_stream_batch
    from turnwall.errors import ValidationFailed
    from turnwall.logs import powertools_logger

    cleanup = Cleanup.build()
    logger = powertools_logger()

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_stream_batch(event):
        return dict(cleanup.process_stream_batch(event, context))
    if is_scheduled_event(event):
        return cleanup.run_schedule(context).summary()
    raise ValidationFailed("the cleanup function takes DynamoDB stream batches and schedules")
