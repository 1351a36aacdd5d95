"""The Bedrock upstream speaks Converse through boto3 (checked with botocore's Stubber)."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from turnwall.services.upstream import BedrockUpstream

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def test_converse_request_and_response_are_translated() -> None:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    upstream = BedrockUpstream(MODEL, client=client)
    with Stubber(client) as stub:
        stub.add_response(
            "converse",
            {
                "output": {
                    "message": {"role": "assistant", "content": [{"text": "Your name is Alice."}]}
                },
                "stopReason": "end_turn",
                "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
                "metrics": {"latencyMs": 10},
            },
            {
                "modelId": MODEL,
                "system": [{"text": "Be brief."}],
                "messages": [
                    {"role": "user", "content": [{"text": "My name is Alice"}]},
                    {"role": "assistant", "content": [{"text": "Hi Alice"}]},
                    {"role": "user", "content": [{"text": "What's my name?"}]},
                ],
                "inferenceConfig": {"maxTokens": 50, "temperature": 0.2},
            },
        )
        response = upstream.complete(
            {
                "model": "ignored",
                "max_tokens": 50,
                "temperature": 0.2,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "My name is Alice"},
                    {"role": "assistant", "content": "Hi Alice"},
                    {"role": "user", "content": [{"type": "text", "text": "What's my name?"}]},
                ],
            }
        )

    assert response["object"] == "chat.completion"
    assert response["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Your name is Alice.",
    }
    assert response["choices"][0]["finish_reason"] == "stop"
    assert response["usage"]["total_tokens"] == 17
