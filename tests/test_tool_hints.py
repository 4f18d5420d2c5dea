"""A team's tool hints: declared in its contract, checked when its catalog is
built, carried by the catalog, read by the offline model alone.

The offline model reaches a tool it has never seen by the phrasings its team
published, words the answer with the team's template, and a tool without
hints is still reachable; no other model is sent them.
"""

from __future__ import annotations

import json
from typing import Any

import nexusrpc
import pytest
from agents import FunctionTool, ModelSettings, Tool
from agents.models.interface import Model, ModelTracing
from nexusrpc.handler import StartOperationContext, service_handler, sync_operation
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage
from pydantic import BaseModel, Field

from meshkit.toolkit import TeamServiceHandler, ToolCatalog
from meshkit.toolkit.catalog import build_catalog, strict_input_schema
from meshkit.toolkit.hints import HintError, ToolHints, fields_of, render
from orchestrator.models.hints import KEY, ModelHints, split_hints, with_hints
from orchestrator.models.offline import OfflineModel
from orchestrator.models.provider import LlmSettings, MeshModelProvider
from orchestrator.session_types import ModelPlanRequest

# --- a team the orchestrator has never heard of ----------------------------------------


class RateRequest(BaseModel):
    """Exchange rate between two currencies."""

    base: str = Field(description="ISO code of the currency to convert from.")
    quote: str = Field(description="ISO code of the currency to convert to.")


class Rate(BaseModel):
    base: str
    quote: str
    rate: float
    as_of: str | None = None


@nexusrpc.service(name="RatesService")
class RatesService:
    catalog: nexusrpc.Operation[None, ToolCatalog]
    exchange_rate: nexusrpc.Operation[RateRequest, Rate]


@service_handler(service=RatesService)
class RatesHandler(TeamServiceHandler):
    @sync_operation
    async def exchange_rate(self, ctx: StartOperationContext, input: RateRequest) -> Rate:
        return Rate(base=input.base, quote=input.quote, rate=0.5)


HINTS = {
    "exchange_rate": ToolHints(
        examples=["What is the exchange rate from {base} to {quote}?", "Convert {base} to {quote}"],
        reply=["1 {base} is {rate:.4f} {quote}", " (as of {as_of})"],
    )
}


def catalog(hints: dict[str, ToolHints] | None = None) -> ToolCatalog:
    return build_catalog(RatesHandler, team="rates", namespace="rates", hints=hints)


async def _unused(ctx: Any, arguments: str) -> str:
    return ""


def tools_of(*catalogs: ToolCatalog) -> tuple[list[Tool], dict[str, ToolHints]]:
    """The tools as the session offers them, and their hints by name."""
    tools: list[Tool] = []
    hints: dict[str, ToolHints] = {}
    for known in catalogs:
        for entry in known.tools:
            tools.append(FunctionTool(entry.name, entry.description, entry.input_schema, _unused))
            if entry.hints:
                hints[entry.name] = entry.hints
    return tools, hints


async def answer(
    items: list[Any] | str, tools: list[Tool], hints: dict[str, ToolHints]
) -> list[Any]:
    settings = with_hints(ModelSettings(), ModelHints(tools=hints))
    response = await OfflineModel().get_response(
        None, items, settings, tools, None, [], ModelTracing.DISABLED,
        previous_response_id=None, conversation_id=None, prompt=None,
    )  # fmt: skip
    return list(response.output)


def calls_of(output: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    assert all(isinstance(item, ResponseFunctionToolCall) for item in output), output
    return [(item.name, json.loads(item.arguments)) for item in output]


def text_of(output: list[Any]) -> str:
    [message] = output
    assert isinstance(message, ResponseOutputMessage)
    return message.content[0].text  # type: ignore[union-attr]


# --- the catalog carries a team's hints ------------------------------------------------


def test_the_catalog_carries_the_hints_the_team_declared() -> None:
    entry = catalog(HINTS).entry("exchange_rate")

    assert entry is not None and entry.hints == HINTS["exchange_rate"]
    again = ToolCatalog.model_validate_json(catalog(HINTS).model_dump_json())
    assert again.entry("exchange_rate").hints == HINTS["exchange_rate"]  # type: ignore[union-attr]


def test_a_catalog_without_hints_still_parses_and_keeps_its_version() -> None:
    plain = catalog()
    old = plain.model_dump(mode="json")
    for tool in old["tools"]:
        del tool["hints"]  # as a team built before hints existed serves it

    parsed = ToolCatalog.model_validate(old)
    assert parsed.entry("exchange_rate").hints is None  # type: ignore[union-attr]
    assert parsed.version == plain.version
    assert catalog(HINTS).version != plain.version


@pytest.mark.parametrize(
    ("hints", "problem"),
    [
        ({"exchange_rat": ToolHints()}, "hints name operations that RatesService does not have"),
        (
            {"exchange_rate": ToolHints(examples=["rate of {currency}"])},
            "names no argument currency",
        ),
        ({"exchange_rate": ToolHints(examples=["rate of {base}"])}, "leaves out quote"),
        ({"exchange_rate": ToolHints(reply=["{price}"])}, "names no result field price"),
        ({"exchange_rate": ToolHints(reply=["{base.__class__}"])}, "not a plain field name"),
        ({"exchange_rate": ToolHints(reply=["{rate!r}"])}, "format this template cannot use"),
        ({"exchange_rate": ToolHints(reply=["{base:>99999}"])}, "format this template cannot use"),
        ({"exchange_rate": ToolHints(defaults={"amount": 1})}, "default 'amount'"),
    ],
)
def test_hints_that_do_not_fit_the_operation_fail_the_catalog(
    hints: dict[str, ToolHints], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem.replace(".", r"\.")):
        catalog(hints)


def test_an_example_may_leave_out_an_argument_it_gives_a_default() -> None:
    hints = {
        "exchange_rate": ToolHints(examples=["dollar rate in {quote}"], defaults={"base": "USD"})
    }
    tools, known = tools_of(catalog(hints))

    assert calls_of_text("dollar rate in EUR", tools, known) == [
        ("exchange_rate", {"base": "USD", "quote": "EUR"})
    ]


def calls_of_text(
    text: str, tools: list[Tool], hints: dict[str, ToolHints]
) -> list[tuple[str, dict[str, Any]]]:
    from orchestrator.models.offline import plan

    return plan(text, tools, hints)


# --- templates --------------------------------------------------------------------------


def test_a_reply_part_naming_a_missing_or_null_field_is_left_out() -> None:
    parts = ["{ticker} is at {price:.2f}", " ({change:+}%)", ", as of {as_of}"]

    assert render(parts, {"ticker": "X", "price": 2, "change": 1.5, "as_of": "now"}) == (
        "X is at 2.00 (+1.5%), as of now"
    )
    assert render(parts, {"ticker": "X", "price": 2, "change": None}) == "X is at 2.00"


def test_a_template_that_does_not_fit_the_output_renders_nothing() -> None:
    assert render(["{price:.2f}"], {"price": "cheap"}) is None
    assert render(["{a.b}"], {"a": {"b": 1}}) is None
    assert render(["{a"], {"a": 1}) is None
    assert render(["{a}"], {}) is None


def test_lists_read_as_words_and_other_values_as_json() -> None:
    assert render(
        ["{ips} / {ok} / {extra}"], {"ips": ["a", "b"], "ok": True, "extra": {"k": 1}}
    ) == ('a, b / true / {"k": 1}')


def test_only_plain_field_names_and_number_formats_are_templates() -> None:
    assert fields_of("{a} and {b:.2f}", formats=True) == ["a", "b"]
    for bad in ("{a[0]}", "{0}", "{a.b}", "{a!s}", "{a:{b}}"):
        with pytest.raises(HintError):
            fields_of(bad, formats=True)
    with pytest.raises(HintError):
        fields_of("{a:.2f}", formats=False)


# --- the offline model reads only what the catalogs say ---------------------------------


async def test_a_new_teams_tool_is_reached_by_its_example_phrasing() -> None:
    tools, hints = tools_of(catalog(HINTS))

    output = await answer("What's the exchange rate from USD to EUR?", tools, hints)
    assert calls_of(output) == [("exchange_rate", {"base": "USD", "quote": "EUR"})]
    output = await answer("please convert GBP to JPY", tools, hints)
    assert calls_of(output) == [("exchange_rate", {"base": "GBP", "quote": "JPY"})]


async def test_without_its_hints_the_same_phrasing_reaches_no_tool() -> None:
    tools, _ = tools_of(catalog(HINTS))

    output = await answer("What's the exchange rate from USD to EUR?", tools, {})
    assert "I am the offline model" in text_of(output)


async def test_the_teams_template_words_the_answer() -> None:
    tools, hints = tools_of(catalog(HINTS))
    items = [
        {"role": "user", "content": "Convert USD to EUR"},
        {"type": "function_call", "call_id": "c1", "name": "exchange_rate", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": json.dumps({"base": "USD", "quote": "EUR", "rate": 0.5, "as_of": None}),
        },
    ]

    assert text_of(await answer(items, tools, hints)) == "1 USD is 0.5000 EUR"
    assert text_of(await answer(items, tools, {})) == (
        "exchange_rate:\n- base: USD\n- quote: EUR\n- rate: 0.5\n- as of: null"
    )


class TimeRequest(BaseModel):
    """Current time in a time zone."""

    timezone: str | None = Field(default=None, description="IANA name; the server's by default.")


def tool_without_hints(name: str, input_type: type[BaseModel]) -> FunctionTool:
    schema = strict_input_schema(input_type)[0]
    return FunctionTool(name, input_type.__doc__ or "", schema, _unused)


async def test_a_tool_without_hints_is_reached_by_the_words_of_its_name() -> None:
    tools: list[Tool] = [tool_without_hints("get_current_time", TimeRequest)]

    assert calls_of(await answer("What is the current time?", tools, {})) == [
        ("get_current_time", {})
    ]
    assert "I am the offline model" in text_of(await answer("What time is it?", tools, {}))


async def test_a_tool_without_hints_that_needs_arguments_is_reached_only_by_name() -> None:
    tools: list[Tool] = [tool_without_hints("exchange_rate", RateRequest)]

    assert "I am the offline model" in text_of(await answer("exchange rate", tools, {}))
    assert calls_of(await answer("exchange_rate base=USD quote=EUR", tools, {})) == [
        ("exchange_rate", {"base": "USD", "quote": "EUR"})
    ]


# --- only the offline model gets them --------------------------------------------------


def test_hints_ride_in_the_model_settings_and_come_out_whole() -> None:
    hints = ModelHints(tools=HINTS, unavailable={"it": "down"})
    settings = with_hints(ModelSettings(temperature=0.1, extra_args={"seed": 1}), hints)

    # One JSON string: the SDK walks and copies model settings at every run.
    assert isinstance((settings.extra_args or {})[KEY], str)
    rest, read = split_hints(settings)
    assert read == hints
    assert rest == ModelSettings(temperature=0.1, extra_args={"seed": 1})
    assert with_hints(ModelSettings(), ModelHints()) == ModelSettings()


class Recording(Model):
    """A model that keeps the settings it was called with."""

    def __init__(self) -> None:
        self.settings: list[ModelSettings] = []

    async def get_response(self, system_instructions: Any, input: Any, model_settings: ModelSettings, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # fmt: skip
        self.settings.append(model_settings)
        return await OfflineModel().get_response(system_instructions, input, ModelSettings(), [], None, [], ModelTracing.DISABLED, previous_response_id=None, conversation_id=None, prompt=None)  # fmt: skip

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


async def test_no_model_but_the_offline_one_is_sent_the_hints_or_asks_for_them() -> None:
    recording = Recording()
    provider = MeshModelProvider(LlmSettings(model="offline"), extra={"recording": recording})
    settings = with_hints(ModelSettings(), ModelHints(tools=HINTS))

    await provider.get_model("recording").get_response(
        None, "hi", settings, [], None, [], ModelTracing.DISABLED,
        previous_response_id=None, conversation_id=None, prompt=None,
    )  # fmt: skip
    assert KEY not in (recording.settings[0].extra_args or {})
    assert not provider.plan(ModelPlanRequest(model="recording")).hints
    assert provider.plan(ModelPlanRequest(model="offline")).hints
    assert provider.plan(ModelPlanRequest(model="default")).hints  # LLM_MODEL=offline
    assert (
        not MeshModelProvider(LlmSettings(model="openai/gpt-4o-mini"))
        .plan(ModelPlanRequest(model="default"))
        .hints
    )
