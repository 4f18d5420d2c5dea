"""Which model answers: the offline router, or any LiteLLM model.

Runs on the orchestrator worker only (model calls are activities), so API keys
are read from that worker's environment and never enter workflow history.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Literal

from agents import ModelSettings
from agents.models.interface import Model, ModelProvider
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshkit.observability.tracing import current_span
from orchestrator.contract import DEFAULT_MODEL
from orchestrator.models.hints import split_hints
from orchestrator.models.offline import NAME as OFFLINE
from orchestrator.models.offline import OfflineModel
from orchestrator.models.streaming import StreamingModel
from orchestrator.session_types import ModelPlan, ModelPlanRequest


class LlmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_", extra="ignore")

    model: str = Field(
        default=OFFLINE,
        description="'offline' (deterministic tool router, no key needed) or any LiteLLM model "
        "string, e.g. openai/gpt-4o-mini or anthropic/claude-sonnet-4-5.",
    )
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL for the LiteLLM model, if any."
    )
    stream: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Stream the model's text to clients as it is written. 'auto': models that "
        "stream natively (LiteLLM's) do, models that answer in one piece (offline, test models) "
        "do not, and a session may ask either way; 'on': every model, one-piece answers sent "
        "in pieces, unless a session asks not to; 'off': never. Sessions pick a change up at "
        "their next turn after model_plan_ttl_s.",
    )
    local_activity: bool = Field(
        default=True,
        description="Run model calls that are not streamed as local activities: no task-queue "
        "round trip, and history keeps the answer but not the input. Off, they are regular "
        "activities, which heartbeat and can be interrupted at once.",
    )

    @field_validator("stream", mode="before")
    @classmethod
    def _stream_words(cls, value: Any) -> Any:
        # LLM_STREAM=true/false, as before 'auto' existed.
        words = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}
        if isinstance(value, bool):
            return "on" if value else "off"
        return words.get(str(value).strip().lower(), value)

    timeout_s: float = Field(
        default=60.0, gt=0, description="Timeout of one request to the LiteLLM model."
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Key for the LiteLLM model; unset means LiteLLM reads the provider's own "
        "variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...).",
    )


class MeshModelProvider(ModelProvider):
    """Maps the model name a session asks for to a model instance.

    ``default`` is the worker's ``LLM_MODEL``; ``offline`` is the offline
    router; names in ``extra`` (tests, benchmarks) are served as given; any
    other name is a LiteLLM model.
    """

    def __init__(self, settings: LlmSettings, extra: Mapping[str, Model] | None = None) -> None:
        self._settings = settings
        # Models that answer in one piece stream by replaying their answer.
        self._extra = {name: StreamingModel(model, name) for name, model in (extra or {}).items()}
        self._offline = StreamingModel(OfflineModel(), OFFLINE)

    def _resolve(self, model_name: str | None) -> str:
        name = model_name or DEFAULT_MODEL
        return self._settings.model if name == DEFAULT_MODEL else name

    def streams_natively(self, model_name: str | None) -> bool:
        """Whether the model writes its answer as it goes (LiteLLM models do)."""
        name = self._resolve(model_name)
        return name != OFFLINE and name not in self._extra

    def plan(self, request: ModelPlanRequest) -> ModelPlan:
        """How a session's model calls run, from the worker's settings and the session's wish."""
        policy = self._settings.stream
        if policy == "off":
            stream = False
        elif request.stream is not None:
            stream = request.stream
        else:
            stream = policy == "on" or self.streams_natively(request.model)
        return ModelPlan(
            stream=stream,
            local_activity=self._settings.local_activity,
            hints=self._resolve(request.model) == OFFLINE,
        )

    def get_model(self, model_name: str | None) -> Model:
        name = self._resolve(model_name)
        if name in self._extra:
            return _Traced(_WithoutHints(self._extra[name]), name)
        if name == OFFLINE:
            return _Traced(self._offline, name)
        return _Traced(_WithoutHints(self._litellm(name)), name)

    def _litellm(self, name: str) -> Model:
        # LiteLLM fetches a price list from the network at import unless told not to.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from agents.extensions.models.litellm_model import LitellmModel

        key = self._settings.api_key.get_secret_value() if self._settings.api_key else None
        model = LitellmModel(model=name, base_url=self._settings.base_url, api_key=key)
        return _Bounded(model, self._settings.timeout_s)


class _Traced(Model):
    """Names the model and its token counts on the model activity's span."""

    def __init__(self, inner: Model, name: str) -> None:
        self._inner = inner
        self._name = name

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = await self._inner.get_response(*args, **kwargs)
        self._record(response.usage)
        return response

    async def stream_response(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        async for event in self._inner.stream_response(*args, **kwargs):
            if getattr(event, "type", None) == "response.completed":
                self._record(getattr(getattr(event, "response", None), "usage", None))
            yield event

    def _record(self, usage: Any) -> None:
        span = current_span()
        if not span.is_recording():
            return
        span.set_attribute("gen_ai.request.model", self._name)
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", int(usage.input_tokens or 0))
            span.set_attribute("gen_ai.usage.output_tokens", int(usage.output_tokens or 0))


class _WithoutHints(Model):
    """A model that is not sent the session's hints: only the offline model reads
    them, and a provider would refuse an argument it does not know."""

    def __init__(self, inner: Model) -> None:
        self._inner = inner

    async def get_response(  # type: ignore[override]
        self,
        system_instructions: Any,
        input: Any,
        model_settings: ModelSettings,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        settings, _ = split_hints(model_settings)
        return await self._inner.get_response(system_instructions, input, settings, *args, **kwargs)

    def stream_response(  # type: ignore[override]
        self,
        system_instructions: Any,
        input: Any,
        model_settings: ModelSettings,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        settings, _ = split_hints(model_settings)
        return self._inner.stream_response(system_instructions, input, settings, *args, **kwargs)


class _Bounded(Model):
    """A model whose requests time out and are never retried by the client library.

    Retries belong to Temporal: the model activity's retry policy backs off
    and gives up, and its history shows each attempt. A retry loop inside
    LiteLLM would hide attempts and could outlive the activity's timeout.
    """

    def __init__(self, inner: Model, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s

    async def get_response(  # type: ignore[override]
        self,
        system_instructions: Any,
        input: Any,
        model_settings: ModelSettings,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        return await self._inner.get_response(
            system_instructions, input, self._bounded(model_settings), *args, **kwargs
        )

    def _bounded(self, model_settings: ModelSettings) -> ModelSettings:
        extra = {**(model_settings.extra_args or {}), "timeout": self._timeout_s, "num_retries": 0}
        return dataclasses.replace(model_settings, extra_args=extra)

    def stream_response(  # type: ignore[override]
        self,
        system_instructions: Any,
        input: Any,
        model_settings: ModelSettings,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        return self._inner.stream_response(
            system_instructions, input, self._bounded(model_settings), *args, **kwargs
        )
