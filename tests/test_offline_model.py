"""The offline model knows no tool: it routes messages by the example phrasings the
teams publish in their catalogs, and words replies with their reply templates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import FunctionTool, ModelResponse, ModelSettings, Tool
from agents.models.interface import ModelTracing
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage
from pydantic import BaseModel, Field

from meshkit.toolkit.catalog import build_catalog, strict_input_schema
from meshkit.toolkit.hints import ToolHints
from orchestrator.models import offline
from orchestrator.models.hints import ModelHints, with_hints
from orchestrator.models.offline import OfflineModel, key_values, named_call
from orchestrator.tools import LOCAL_TOOLS

TOOL_NAMES = ("calculator", "weather", "jira_metrics", "get_ip", "stock_price", "calculate_roi")


async def _unused(ctx: Any, arguments: str) -> str:
    raise AssertionError("the model only plans; the agent loop calls tools")


def mesh_tools() -> tuple[list[Tool], dict[str, ToolHints]]:
    """The tools of the local worker and of every team, with their hints, as a
    session passes them to the model: from the teams' catalogs."""
    from services.finance.team import register as finance
    from services.it.team import register as it

    tools: list[Tool] = []
    hints: dict[str, ToolHints] = {}
    for spec in LOCAL_TOOLS:
        schema = strict_input_schema(spec.input_type)[0]
        tools.append(FunctionTool(spec.activity, spec.activity, schema, _unused))
        if spec.hints:
            hints[spec.activity] = spec.hints
    for team, registration in (("it", it()), ("finance", finance())):
        catalog = build_catalog(
            registration.handler,  # type: ignore[arg-type]
            team=team,
            namespace=team,
            policies=dict(registration.policies),
            hints=dict(registration.hints),
            imports_pending=bool(registration.mcp_servers),
        )
        for entry in catalog.tools:
            tools.append(FunctionTool(entry.name, entry.description, entry.input_schema, _unused))
            if entry.hints:
                hints[entry.name] = entry.hints
    return tools, hints


MESH_TOOLS, MESH_HINTS = mesh_tools()


def plan(text: str) -> list[tuple[str, dict[str, Any]]]:
    return offline.plan(text, MESH_TOOLS, MESH_HINTS)


# --- plan: which tool, with which arguments ---------------------------------------------


def test_arithmetic_question_goes_to_the_calculator() -> None:
    assert plan("What is 15 * 23?") == [("calculator", {"expression": "15 * 23"})]


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("what is 2^10", "2^10"),
        ("Compute sqrt(16) + 1 please", "sqrt(16) + 1"),
        ("how much is 12 x 3", "12 * 3"),
        ("(1 + 2) * 3 =", "(1 + 2) * 3"),
    ],
)
def test_other_arithmetic_is_extracted_as_an_expression(text: str, expression: str) -> None:
    assert plan(text) == [("calculator", {"expression": expression})]


@pytest.mark.parametrize(
    "text", ["What is my IP address?", "what's my ip", "Show me the network address"]
)
def test_ip_question_goes_to_get_ip(text: str) -> None:
    assert plan(text) == [("get_ip", {})]


@pytest.mark.parametrize(
    ("text", "ticker"),
    [
        ("What is the stock price of AAPL?", "AAPL"),
        # The team's handler reads "$msft" as MSFT: the model passes on what was said.
        ("stock price of $msft", "$msft"),
        ("What is the share price of NVDA", "NVDA"),
        ("quote for nvda", "nvda"),
        ("Where is BRK.B trading at?", "BRK.B"),
    ],
)
def test_stock_question_names_the_ticker(text: str, ticker: str) -> None:
    assert plan(text) == [("stock_price", {"ticker": ticker})]


def test_roi_question_extracts_principal_rate_and_years() -> None:
    assert plan("What is the ROI on 10000 at 5% for 10 years?") == [
        ("calculate_roi", {"principal": 10000, "annual_rate": 5, "years": 10})
    ]


@pytest.mark.parametrize(
    ("text", "principal", "rate", "years"),
    [
        ("ROI of $25,000 at 7.5 percent over 3 years", 25_000, 7.5, 3),
        ("If I invest 5k at 4% for 2 years, what is my return on investment?", 5_000, 4, 2),
        ("return on investment for 1.5m at 3.25% over 12 yrs", 1_500_000, 3.25, 12),
        ("ROI: 5% for 10 years on 2000", 2000, 5, 10),
    ],
)
def test_roi_amounts_are_read_in_their_usual_spellings(
    text: str, principal: float, rate: float, years: float
) -> None:
    assert plan(text) == [
        ("calculate_roi", {"principal": principal, "annual_rate": rate, "years": years})
    ]


@pytest.mark.parametrize(
    ("text", "city"),
    [
        ("weather in San Francisco today", "San Francisco"),
        ("What's the weather in Paris?", "Paris"),
        ("temperature in New York right now", "New York"),
        ("forecast for Berlin please", "Berlin"),
    ],
)
def test_weather_question_names_the_city(text: str, city: str) -> None:
    assert plan(text) == [("weather", {"city": city})]


def test_weather_without_a_city_is_not_routed() -> None:
    assert plan("how is the weather") == []


@pytest.mark.parametrize(
    ("text", "project"),
    [
        ("Jira metrics for project OPS", "OPS"),
        ("Show me the jira status of INFRA", "INFRA"),
        ("how many tickets does project PAY2 have, what is its status", "PAY2"),
        ("jira metrics for ops", "ops"),
    ],
)
def test_jira_question_names_the_project(text: str, project: str) -> None:
    assert plan(text) == [("jira_metrics", {"project": project})]


def test_one_message_can_ask_for_several_tools_in_order() -> None:
    text = (
        "What is 2 + 2 and what is the weather in Paris? "
        "Also stock price of TSLA; then Jira metrics for OPS"
    )

    assert plan(text) == [
        ("calculator", {"expression": "2 + 2"}),
        ("weather", {"city": "Paris"}),
        ("stock_price", {"ticker": "TSLA"}),
        ("jira_metrics", {"project": "OPS"}),
    ]


def test_a_repeated_request_is_planned_once() -> None:
    assert plan("What is my IP address? And my IP address again!") == [("get_ip", {})]


@pytest.mark.parametrize("text", ["hello", "", "thanks, that is all", "tell me a joke"])
def test_small_talk_plans_no_tool(text: str) -> None:
    assert plan(text) == []


# --- get_response: the agent loop's view ------------------------------------------------


def make_tool(name: str) -> FunctionTool:
    async def never_called(_ctx: Any, _arguments: str) -> str:
        raise AssertionError("the model only plans; the agent loop calls tools")

    return FunctionTool(
        name=name,
        description=f"The {name} tool. It does {name} things.",
        params_json_schema={
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        },
        on_invoke_tool=never_called,
    )


ALL_TOOLS: list[Tool] = [make_tool(name) for name in TOOL_NAMES]


async def respond(
    items: list[Any] | str,
    tools: list[Tool] = MESH_TOOLS,
    hints: dict[str, ToolHints] = MESH_HINTS,
    unavailable: dict[str, str] | None = None,
) -> ModelResponse:
    """The model's answer, given hints and unavailable teams as a session gives them."""
    settings = with_hints(ModelSettings(), ModelHints(tools=hints, unavailable=unavailable or {}))
    return await OfflineModel().get_response(
        system_instructions=None,
        input=items,
        model_settings=settings,
        tools=tools,
        output_schema=None,
        handoffs=[],
        tracing=ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
    }


def output(call_id: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": json.dumps(result)}


def assistant(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def reply_text(response: ModelResponse) -> str:
    assert len(response.output) == 1
    message = response.output[0]
    assert isinstance(message, ResponseOutputMessage)
    assert message.role == "assistant"
    return "".join(part.text for part in message.content if hasattr(part, "text"))


def function_calls(response: ModelResponse) -> list[ResponseFunctionToolCall]:
    calls = [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]
    assert len(calls) == len(response.output)
    return calls


async def test_a_user_message_becomes_function_calls() -> None:
    response = await respond([user("What is 15 * 23? And what is my IP address?")])

    calls = function_calls(response)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("calculator", {"expression": "15 * 23"}),
        ("get_ip", {}),
    ]
    assert len({c.call_id for c in calls}) == 2


async def test_a_plain_string_input_is_read_as_a_user_message() -> None:
    response = await respond("Stock price of AAPL")

    calls = function_calls(response)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("stock_price", {"ticker": "AAPL"})
    ]


async def test_only_tools_the_agent_was_given_are_called() -> None:
    response = await respond(
        [user("What is 2 + 2 and the weather in Paris?")],
        tools=[tool for tool in MESH_TOOLS if tool.name == "weather"],
    )

    assert [c.name for c in function_calls(response)] == ["weather"]


async def test_roi_output_becomes_a_reply_with_the_figures() -> None:
    args = {"principal": 10000, "annual_rate": 5, "years": 10}
    result = {
        "principal": 10000.0,
        "annual_rate": 5.0,
        "years": 10.0,
        "final_value": 16288.95,
        "profit": 6288.95,
        "roi_percent": 62.89,
    }

    response = await respond(
        [
            user("What is the ROI on 10000 at 5% for 10 years?"),
            call("call_1_0", "calculate_roi", args),
            output("call_1_0", result),
        ]
    )

    text = reply_text(response)
    assert "16288.95" in text
    assert "6288.95" in text
    assert "62.89%" in text
    assert "10000.00" in text


async def test_each_tool_output_gets_a_line_of_the_reply() -> None:
    response = await respond(
        [
            user("What is 15 * 23 and the weather in Paris?"),
            call("c1", "calculator", {"expression": "15 * 23"}),
            call("c2", "weather", {"city": "Paris"}),
            output("c1", {"expression": "15 * 23", "value": 345}),
            output(
                "c2",
                {
                    "city": "Paris",
                    "country": "France",
                    "temperature_c": 7.4,
                    "wind_speed_kmh": 13.2,
                    "conditions": "overcast",
                    "source": "demo data",
                },
            ),
        ]
    )

    lines = reply_text(response).splitlines()
    assert lines == [
        "15 * 23 = 345 (calculator)",
        "Weather in Paris: overcast, 7.4 °C, wind 13.2 km/h (source: demo data)",
    ]


async def test_a_tool_error_is_reported_as_could_not_run() -> None:
    response = await respond(
        [
            user("Stock price of ZZZZZ"),
            call("c1", "stock_price", {"ticker": "ZZZZZ"}),
            output("c1", {"error": "no quote for ticker ZZZZZ"}),
        ]
    )

    assert reply_text(response) == "I could not run stock_price: no quote for ticker ZZZZZ"


async def test_an_unexpected_tool_output_is_shown_raw_rather_than_lost() -> None:
    response = await respond(
        [
            user("What is my IP address?"),
            call("c1", "get_ip", {}),
            {"type": "function_call_output", "call_id": "c1", "output": "not json"},
        ]
    )

    assert reply_text(response) == "get_ip: not json"


async def test_without_a_matching_tool_the_reply_lists_the_tools() -> None:
    response = await respond([user("hello")], ALL_TOOLS, {})

    text = reply_text(response)
    for name in TOOL_NAMES:
        assert f"- {name}: The {name} tool" in text
    assert "offline model" in text


async def test_asking_about_history_lists_the_earlier_user_messages() -> None:
    response = await respond(
        [
            user("What is 15 * 23?"),
            call("c1", "calculator", {"expression": "15 * 23"}),
            output("c1", {"expression": "15 * 23", "value": 345}),
            assistant("15 * 23 = 345 (calculator)"),
            user("hello"),
            assistant("I am the offline model..."),
            user("what did I ask before?"),
        ]
    )

    assert reply_text(response) == "So far you asked:\n1. What is 15 * 23?\n2. hello"


async def test_asking_about_history_first_says_there_is_none() -> None:
    response = await respond([user("What did I ask before?")])

    assert reply_text(response) == "This is your first message in this session."


async def test_outputs_of_an_earlier_turn_do_not_answer_a_new_question() -> None:
    response = await respond(
        [
            user("What is 15 * 23?"),
            call("c1", "calculator", {"expression": "15 * 23"}),
            output("c1", {"expression": "15 * 23", "value": 345}),
            assistant("15 * 23 = 345 (calculator)"),
            user("weather in Paris"),
        ]
    )

    assert [c.name for c in function_calls(response)] == ["weather"]


async def test_usage_counts_one_request_and_some_tokens() -> None:
    response = await respond([user("What is 15 * 23?")])

    assert response.usage.requests == 1
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


async def test_one_shot_iterators_in_the_input_are_read_once_and_counted_small() -> None:
    """In the model activity, Iterable fields of input items arrive as one-shot
    iterators; the model must copy them, not count their repr or read them empty."""

    class OneShot:
        def __init__(self, parts: list[dict[str, object]]) -> None:
            self._parts = iter(parts)

        def __iter__(self):  # type: ignore[no-untyped-def]
            return self._parts

        def __repr__(self) -> str:
            return "X" * 50_000

    items: list[Any] = [
        {"role": "user", "content": "What is 2 + 2?"},
        {
            "type": "message",
            "role": "assistant",
            "content": OneShot([{"type": "output_text", "text": "It is 4.", "annotations": []}]),
        },
        {"role": "user", "content": "What did I ask before?"},
    ]
    response = await OfflineModel().get_response(
        None, items, ModelSettings(), [], None, [], ModelTracing.DISABLED,
        previous_response_id=None, conversation_id=None, prompt=None,
    )  # fmt: skip
    assert response.usage.input_tokens < 200


# --- any tool by name, from its catalog ----------------------------------------------------


def catalog_tools() -> list[Tool]:
    """The Finance team's tools as the agent receives them, from its catalog."""
    from meshkit.toolkit.catalog import build_catalog
    from services.finance.contract import POLICIES
    from services.finance.handler import FinanceServiceHandler

    catalog = build_catalog(
        FinanceServiceHandler, team="finance", namespace="finance", policies=POLICIES
    )

    async def unused(ctx: Any, arguments: str) -> str:
        return ""

    return [
        FunctionTool(
            name=tool.name,
            description=tool.description,
            params_json_schema=tool.input_schema,
            on_invoke_tool=unused,
        )
        for tool in catalog.tools
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "calculate_roi principal=1000 annual_rate=10 years=2",
            ("calculate_roi", {"principal": 1000.0, "annual_rate": 10.0, "years": 2.0}),
        ),
        (
            'calculate_roi {"principal": 5, "annual_rate": 1, "years": 3}',
            ("calculate_roi", {"principal": 5, "annual_rate": 1, "years": 3}),
        ),
        (
            "submit_expense amount=12.5 currency=EUR description='taxi to the airport'",
            (
                "submit_expense",
                {"amount": 12.5, "currency": "EUR", "description": "taxi to the airport"},
            ),
        ),
        ('stock_price ticker="BRK.B"', ("stock_price", {"ticker": "BRK.B"})),
        ("what is the ROI on 1000 at 10% for 2 years", None),
    ],
)
def test_a_tool_named_with_arguments_is_called_with_typed_values(
    text: str, expected: tuple[str, dict[str, Any]] | None
) -> None:
    assert named_call(text, catalog_tools()) == expected


def test_values_take_the_type_the_schema_gives_them_not_the_one_they_look_like() -> None:
    roi = named_call("calculate_roi principal=1000 annual_rate=10 years=2", catalog_tools())
    assert isinstance(roi, tuple)
    assert {key: type(value) for key, value in roi[1].items()} == {
        "principal": float,
        "annual_rate": float,
        "years": float,
    }
    # A ticker is a string in the schema, so digits stay a string.
    assert named_call("stock_price ticker=123", catalog_tools()) == (
        "stock_price",
        {"ticker": "123"},
    )


class FxRateRequest(BaseModel):
    """Exchange rate between two currencies."""

    base: str = Field(description="ISO code of the currency to convert from.")
    days: int = Field(default=1, description="How many days of history.")
    inverse: bool = Field(default=False, description="Quote base per quote currency.")
    note: str | None = Field(default=None, description="Anything to log with the request.")
    quotes: list[str] = Field(default_factory=list, description="Currencies to convert to.")


def new_team_tool() -> FunctionTool:
    """A tool no keyword route knows, with the schema a team's catalog would give it."""

    async def unused(ctx: Any, arguments: str) -> str:
        return ""

    return FunctionTool(
        name="fx_rate",
        description="Exchange rate between two currencies.",
        params_json_schema=strict_input_schema(FxRateRequest)[0],
        on_invoke_tool=unused,
    )


def test_a_new_teams_tool_is_callable_by_name_with_every_kind_of_value() -> None:
    text = 'fx_rate base=USD days=7 inverse=true note=null quotes=["EUR","GBP"]'
    assert named_call(text, [new_team_tool()]) == (
        "fx_rate",
        {"base": "USD", "days": 7, "inverse": True, "note": None, "quotes": ["EUR", "GBP"]},
    )
    days = named_call("fx_rate days=7", [new_team_tool()])
    assert isinstance(days, tuple) and type(days[1]["days"]) is int


def test_quoted_values_keep_their_spaces_and_escaped_quotes() -> None:
    assert named_call('fx_rate note="say \\"hi\\" twice" base=\'US D\'', [new_team_tool()]) == (
        "fx_rate",
        {"note": 'say "hi" twice', "base": "US D"},
    )
    # Quoted, "null" is the word, not a missing value.
    assert named_call("fx_rate note='null'", [new_team_tool()]) == ("fx_rate", {"note": "null"})


def test_a_backslash_in_a_quoted_value_does_not_break_the_model() -> None:
    result = named_call('fx_rate base=USD note="C:\\Users\\docs"', [new_team_tool()])
    assert result == ("fx_rate", {"base": "USD", "note": "C:\\Users\\docs"}) or (
        isinstance(result, str) and "note" in result
    )


def test_a_leading_word_that_names_no_given_tool_is_not_a_call() -> None:
    assert named_call("fx_rate base=USD", catalog_tools()) is None
    assert named_call("Calculate_roi principal=1", catalog_tools()) is None
    assert named_call("   ", catalog_tools()) is None


def test_a_named_call_it_cannot_read_gets_a_usage_line() -> None:
    garbled = named_call("calculate_roi principal=1000 years two", catalog_tools())
    assert garbled == (
        "I did not understand 'years two'. Call it as: calculate_roi principal=... "
        "annual_rate=... years=... (or with a JSON object)."
    )
    # Words after a tool's name, without any key=value, are a question, not a call.
    assert named_call("calculate_roi for my savings", catalog_tools()) is None
    broken = named_call("calculate_roi {principal: 1}", catalog_tools())
    assert isinstance(broken, str) and "not valid JSON" in broken
    assert "calculate_roi principal=... annual_rate=... years=..." in broken


def test_json_arguments_are_one_whole_object_after_the_tools_name() -> None:
    trailing = named_call('submit_expense {"amount": 5} extra', catalog_tools())
    assert isinstance(trailing, str) and "not valid JSON" in trailing
    assert "submit_expense amount=... currency=... description=..." in trailing
    assert named_call("stock_price {}", catalog_tools()) == ("stock_price", {})
    assert named_call('fx_rate {"base": "USD"} ', [new_team_tool()]) == (
        "fx_rate",
        {"base": "USD"},
    )
    # A JSON array is neither an object nor key=value words: a question, not a call.
    assert named_call('fx_rate ["USD"]', [new_team_tool()]) is None


async def test_a_named_call_reaches_the_agent_as_a_tool_call() -> None:
    response = await respond("calculate_roi principal=1000 annual_rate=10 years=2", catalog_tools())
    [call] = response.output
    assert isinstance(call, ResponseFunctionToolCall) and call.name == "calculate_roi"
    assert json.loads(call.arguments) == {"principal": 1000.0, "annual_rate": 10.0, "years": 2.0}


def test_a_result_without_a_format_reads_as_key_value_lines() -> None:
    assert key_values("fx_rate", {"base": "USD", "rate": 0.5, "pairs": ["USD/EUR"]}) == (
        'fx_rate:\n- base: USD\n- rate: 0.5\n- pairs: ["USD/EUR"]'
    )
    assert key_values("fx_rate", {"as_of": None, "stale": True, "city": "Zürich"}) == (
        "fx_rate:\n- as of: null\n- stale: true\n- city: Zürich"
    )


async def test_a_new_teams_tool_output_is_answered_as_key_value_lines() -> None:
    response = await respond(
        [
            user("fx_rate base=USD"),
            call("c1", "fx_rate", {"base": "USD"}),
            output("c1", {"base": "USD", "quote": "EUR", "rate": 0.92}),
        ],
        [new_team_tool()],
    )

    assert reply_text(response) == "fx_rate:\n- base: USD\n- quote: EUR\n- rate: 0.92"


async def test_unavailable_teams_given_as_data_are_passed_on_to_the_user() -> None:
    response = await respond(
        "hello", catalog_tools(), {}, unavailable={"it": "no answer within 3 s"}
    )

    text = reply_text(response)
    assert (
        "Unavailable right now, so I could not use their tools: team it (no answer within 3 s)"
        in text
    )
    assert "- calculate_roi: Future value and return of an investment" in text


async def test_every_unavailable_team_is_named_also_under_the_tools_answers() -> None:
    unavailable = {"it": "connection refused: 127.0.0.1:7233. Retrying.", "hr": "no answer"}
    response = await respond(
        [
            user("ROI of 1000 at 10% for 2 years"),
            call("c1", "calculate_roi", {"principal": 1000, "annual_rate": 10, "years": 2}),
            output("c1", {"error": "finance is busy"}),
        ],
        catalog_tools(),
        unavailable=unavailable,
    )

    assert reply_text(response) == (
        "I could not run calculate_roi: finance is busy\n"
        "Unavailable right now, so I could not use their tools: team it (connection refused: "
        "127.0.0.1:7233. Retrying.); team hr (no answer). Try again later."
    )


async def test_the_prompt_is_not_read_for_unavailable_teams() -> None:
    from orchestrator.turns import INSTRUCTIONS, UNAVAILABLE

    response = await OfflineModel().get_response(
        INSTRUCTIONS + UNAVAILABLE.format(teams="team it (down)"),
        "hello", ModelSettings(), catalog_tools(), None, [], ModelTracing.DISABLED,
        previous_response_id=None, conversation_id=None, prompt=None,
    )  # fmt: skip

    assert "Unavailable" not in reply_text(response)


async def test_the_help_text_lists_each_tool_it_is_given_and_no_other() -> None:
    tools = catalog_tools()
    response = await respond("hello", tools)

    listed = [line for line in reply_text(response).splitlines() if line.startswith("- ")]
    assert [line.split(":")[0] for line in listed] == [f"- {tool.name}" for tool in tools]
    for line, tool in zip(listed, tools, strict=True):
        assert isinstance(tool, FunctionTool)
        first = tool.description.split(". ")[0].rstrip(".")
        example = MESH_HINTS[tool.name].examples[0]
        assert line == f'- {tool.name}: {first} (say "{example}")'

    bare = reply_text(await respond("hello", tools, {}))
    assert "(say" not in bare
