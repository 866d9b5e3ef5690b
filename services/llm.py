"""The LLM client port: one chat completion, bounded in time, with its token usage and latency.

`ChatModel` is what the knowledge answers need; `OpenAIChatModel` implements it on the
`openai` package (OpenAI, or Azure OpenAI when an Azure endpoint is configured). A call that
fails, times out or answers nothing raises `ModelUnavailable`, and the caller falls back to
its offline answer: Teams waits 15 s for a turn, so there are no retries and one deadline for
the whole call (connect, wait, read).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("seatdesk.llm")

DEFAULT_AZURE_API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class LLMConfig:
    api_key: str = field(repr=False)  # a secret: never logged
    model: str = "gpt-4o-mini"  # for Azure OpenAI: the deployment name
    timeout_seconds: float = 6.0
    base_url: str | None = None  # OpenAI-compatible endpoint; None: api.openai.com
    azure_endpoint: str | None = None  # set: Azure OpenAI
    azure_api_version: str = DEFAULT_AZURE_API_VERSION
    max_output_tokens: int = 500

    @property
    def provider(self) -> str:
        return "azure" if self.azure_endpoint else "openai"


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


class ModelUnavailable(Exception):
    """The model gave no usable answer in time; `reason` is short and safe to log."""

    def __init__(self, reason: str, latency_ms: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.latency_ms = latency_ms


class ChatModel(Protocol):
    name: str  # for logs and reports, e.g. "openai:gpt-4o-mini"
    timeout_seconds: float

    async def complete(self, messages: Sequence[dict[str, str]]) -> Completion:
        """One chat completion; raises ModelUnavailable, never anything else."""
        ...

    async def close(self) -> None: ...


class OpenAIChatModel:
    """Chat completions through `openai.AsyncOpenAI` or `openai.AsyncAzureOpenAI`."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.name = f"{config.provider}:{config.model}"
        self.timeout_seconds = config.timeout_seconds
        self._client: Any = None  # created on first use, inside the running event loop

    def _make_client(self) -> Any:
        import openai  # imported here: the command line and offline answers never pay for it

        common = {"api_key": self.config.api_key, "timeout": self.config.timeout_seconds, "max_retries": 0}
        if self.config.azure_endpoint:
            return openai.AsyncAzureOpenAI(
                azure_endpoint=self.config.azure_endpoint,
                azure_deployment=self.config.model,
                api_version=self.config.azure_api_version,
                **common,
            )
        return openai.AsyncOpenAI(base_url=self.config.base_url or None, **common)

    async def complete(self, messages: Sequence[dict[str, str]]) -> Completion:
        import openai

        start = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - start) * 1000

        try:
            if self._client is None:
                self._client = self._make_client()
            # The client's own timeout applies per read; a slow trickle needs one overall deadline.
            async with asyncio.timeout(self.config.timeout_seconds):
                response = await self._client.chat.completions.create(
                    model=self.config.model,
                    messages=list(messages),
                    temperature=0,
                    max_completion_tokens=self.config.max_output_tokens,
                )
        except (TimeoutError, openai.APITimeoutError):
            log.warning("model %s: no answer within %.1f s", self.name, self.config.timeout_seconds)
            raise ModelUnavailable("timeout", elapsed()) from None
        except openai.APIStatusError as error:
            # The API's own message names the problem (wrong deployment, unsupported parameter…).
            log.warning("model %s: HTTP %s: %s", self.name, error.status_code, str(error)[:300])
            raise ModelUnavailable(f"http_{error.status_code}", elapsed()) from None
        except openai.APIConnectionError:
            log.warning("model %s: cannot connect", self.name)
            raise ModelUnavailable("connection", elapsed()) from None
        except (openai.OpenAIError, ValueError, TypeError) as error:
            log.warning("model %s: unusable response (%s)", self.name, type(error).__name__)
            raise ModelUnavailable("bad_response", elapsed()) from None
        choice = response.choices[0] if getattr(response, "choices", None) else None
        content = (choice.message.content or "") if choice is not None and choice.message is not None else ""
        usage = getattr(response, "usage", None)
        completion = Completion(
            text=content.strip(),
            model=getattr(response, "model", None) or self.config.model,
            latency_ms=round(elapsed(), 1),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            finish_reason=getattr(choice, "finish_reason", None),
        )
        log.info(
            "model %s answered in %.0f ms: prompt_tokens=%s completion_tokens=%s finish=%s",
            self.name,
            completion.latency_ms,
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.finish_reason,
        )
        if not completion.text:
            raise ModelUnavailable("empty", completion.latency_ms)
        return completion

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def chat_model(config: LLMConfig | None) -> ChatModel | None:
    """The configured model, or None when no key is set (answers stay offline)."""
    return OpenAIChatModel(config) if config is not None else None
