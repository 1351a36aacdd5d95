"""The model behind /v1/chat/completions: any OpenAI-compatible endpoint, or Bedrock.

Both speak OpenAI's Chat Completions shapes to the chat service: a request dict in,
a `chat.completion` dict (or `chat.completion.chunk` dicts when streaming) out.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from turnwall.errors import ConfigurationError, UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    from collections.abc import Iterator

    from turnwall.settings import Settings

BEDROCK_PREFIX = "bedrock:"


class Upstream(Protocol):
    """A chat model reachable with OpenAI's request and response shapes."""

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """One `chat.completion` for `request` (whose `stream` is false)."""
        ...

    def stream(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The `chat.completion.chunk` objects for `request`, in order."""
        ...

    def close(self) -> None:
        """Release the connections of the client this upstream made."""
        ...


def build_upstream(settings: Settings) -> Upstream | None:
    """The configured upstream, or None when chat is not configured.

    Raises:
        ConfigurationError: IW_UPSTREAM names an unknown kind.
    """
    if settings.upstream and settings.upstream.startswith(BEDROCK_PREFIX):
        return BedrockUpstream(settings.upstream.removeprefix(BEDROCK_PREFIX))
    if settings.upstream:
        raise ConfigurationError("IW_UPSTREAM must be bedrock:<model-id> (or use IW_UPSTREAM_URL)")
    if settings.upstream_url:
        return OpenAICompatibleUpstream(
            settings.upstream_url, settings.upstream_api_key, settings.upstream_timeout_secs
        )
    return None


class OpenAICompatibleUpstream:
    """POST {base_url}/chat/completions with httpx: timeouts, and retries on connect errors."""

    def __init__(self, base_url: str, api_key: str | None, timeout_secs: float) -> None:
        import httpx

        self._httpx = httpx
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_secs, connect=5.0),
            transport=httpx.HTTPTransport(retries=2),  # retries connection failures only
        )

    def close(self) -> None:
        """Release the pooled connections to the upstream."""
        self._client.close()

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        httpx = self._httpx
        try:
            response = self._client.post("chat/completions", json={**request, "stream": False})
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the upstream model did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream model cannot be reached: {exc}") from exc
        if response.status_code >= 400:
            raise UpstreamError(
                f"the upstream model answered {response.status_code}",
                details={"upstream_status": response.status_code},
            )
        try:
            body: dict[str, Any] = response.json()
            body["choices"][0]["message"]  # the shape chat relies on
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UpstreamError(
                "the upstream model answered something other than a chat completion"
            ) from exc
        return body

    def stream(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        httpx = self._httpx
        try:
            with self._client.stream(
                "POST", "chat/completions", json={**request, "stream": True}
            ) as response:
                if response.status_code >= 400:
                    raise UpstreamError(
                        f"the upstream model answered {response.status_code}",
                        details={"upstream_status": response.status_code},
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line.removeprefix("data:").strip()
                    if data == "[DONE]":
                        return
                    try:
                        yield json.loads(data)
                    except ValueError as exc:
                        raise UpstreamError("the upstream stream held a malformed chunk") from exc
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the upstream model did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream model cannot be reached: {exc}") from exc


class BedrockUpstream:
    """Amazon Bedrock's Converse API through boto3, translated to OpenAI's shapes."""

    def __init__(self, model_id: str, client: Any = None) -> None:
        owns_client = client is None
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "bedrock-runtime",
                config=Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard"}),
            )
        self.model_id = model_id
        self._client = client
        self._owns_client = owns_client

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        try:
            reply = self._client.converse(**self._converse_arguments(request))
        except ReadTimeoutError as exc:
            raise UpstreamTimeout("Bedrock did not answer in time") from exc
        except (ClientError, BotoCoreError) as exc:
            raise UpstreamError(f"Bedrock refused the request: {exc}") from exc
        text = "".join(block.get("text", "") for block in reply["output"]["message"]["content"])
        usage = reply.get("usage", {})
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": _finish_reason(reply.get("stopReason")),
                }
            ],
            "usage": {
                "prompt_tokens": usage.get("inputTokens", 0),
                "completion_tokens": usage.get("outputTokens", 0),
                "total_tokens": usage.get("totalTokens", 0),
            },
        }

    def stream(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        chunk_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model_id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        try:
            reply = self._client.converse_stream(**self._converse_arguments(request))
            yield chunk({"role": "assistant", "content": ""})
            for event in reply["stream"]:
                if "contentBlockDelta" in event:
                    yield chunk({"content": event["contentBlockDelta"]["delta"].get("text", "")})
                elif "messageStop" in event:
                    yield chunk({}, _finish_reason(event["messageStop"].get("stopReason")))
        except ReadTimeoutError as exc:
            raise UpstreamTimeout("Bedrock did not answer in time") from exc
        except (ClientError, BotoCoreError) as exc:
            raise UpstreamError(f"Bedrock refused the request: {exc}") from exc

    def _converse_arguments(self, request: dict[str, Any]) -> dict[str, Any]:
        system = [{"text": text_of(m)} for m in request["messages"] if m.get("role") == "system"]
        messages: list[dict[str, Any]] = []
        for message in request["messages"]:
            role = message.get("role")
            if role == "system":
                continue
            # Converse knows only user and assistant turns; tool output reads as user text.
            converse_role = "assistant" if role == "assistant" else "user"
            if messages and messages[-1]["role"] == converse_role:
                messages[-1]["content"].append({"text": text_of(message)})
            else:
                messages.append({"role": converse_role, "content": [{"text": text_of(message)}]})
        inference = {
            name: request[key]
            for key, name in (
                ("max_tokens", "maxTokens"),
                ("temperature", "temperature"),
                ("top_p", "topP"),
            )
            if request.get(key) is not None
        }
        if request.get("stop"):
            stop = request["stop"]
            inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        arguments: dict[str, Any] = {"modelId": self.model_id, "messages": messages}
        if system:
            arguments["system"] = system
        if inference:
            arguments["inferenceConfig"] = inference
        return arguments


def text_of(message: dict[str, Any]) -> str:
    """The text of an OpenAI message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _finish_reason(stop_reason: str | None) -> str:
    return {"max_tokens": "length", "tool_use": "tool_calls"}.get(stop_reason or "", "stop")
