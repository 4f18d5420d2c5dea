"""What a session's turn is made of: the agent it runs, and how it is observed.

Each turn runs a new ``Agent``: the mesh's instructions (which name no tool,
so a team adds or changes a tool without touching the orchestrator), the
teams left out of the turn, the tools built from the catalogs, and their
hints as data for a model that cannot read instructions. Each turn is a span
of its message's trace, a metric and a log line (``orchestrator.turns``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agents import Agent, ModelSettings, RunConfig
    from agents.run_config import CallModelData, ModelInputData
    from opentelemetry.trace import Status, StatusCode

    from meshkit.observability import metrics
    from meshkit.observability.logs import log_event
    from meshkit.observability.tracing import span
    from orchestrator.contract import ChatReply, SessionConfig
    from orchestrator.models.hints import with_dumped_hints
    from orchestrator.session_types import ModelPlan

INSTRUCTIONS = """\
You are the assistant of a company whose teams each own some of your tools.
Whenever one of your tools covers the request, use it instead of answering
from memory, and answer from its results. When a tool reports an error or the
user denies a call, tell the user what happened in plain words and what they
could try instead. Be concise."""

UNAVAILABLE = """

Unavailable right now: {teams}. Their tools are left out of this turn. If the
user asks for something they provide, say that the team is unavailable and to
try again later."""

log = logging.getLogger("orchestrator.turns")


def earlier_turns(history: list[dict[str, Any]]) -> RunConfig:
    """A run of one turn whose model calls see ``history`` (the session's earlier
    turns, as ``RunResult.to_input_list`` gave them) before the turn's own items.

    The runner is given only the turn's message. Given the whole conversation,
    the Agents SDK copies and converts every earlier item several times per
    run (a deep copy for its run state, a JSON-compatible copy before each
    model call and for the result), which grew a turn's CPU with the length of
    the session. Its supported hook for what a model call sees,
    ``call_model_input_filter``, puts the earlier turns back: each model call
    gets the same input as before, the runner converts only the turn's own
    items, and ``to_input_list`` of the result holds only those.
    """
    earlier: list[Any] = list(history)

    def with_earlier(call: CallModelData[Any]) -> ModelInputData:
        data = call.model_data
        return ModelInputData(input=[*earlier, *data.input], instructions=data.instructions)

    return RunConfig(call_model_input_filter=with_earlier)


def turn_agent(
    config: SessionConfig,
    tools: list[Any],
    hints: str,
    unavailable: dict[str, str],
    plan: ModelPlan | None,
) -> Agent[Any]:
    """The agent of one turn (its model is the session's, by name)."""
    instructions = INSTRUCTIONS
    if unavailable:
        teams = "; ".join(f"team {team} ({why})" for team, why in unavailable.items())
        instructions += UNAVAILABLE.format(teams=teams)
    settings = ModelSettings()
    if plan is None or plan.hints:
        # A model that cannot read the instructions (the offline one) gets
        # the same facts as data; model settings are only the model call's input.
        settings = with_dumped_hints(settings, hints, unavailable)
    return Agent(
        name="Mesh assistant",
        instructions=instructions,
        model=config.model,
        tools=tools,
        model_settings=settings,
    )


async def observed(number: int, model: str, run: Callable[[], Awaitable[ChatReply]]) -> ChatReply:
    """Turn ``number`` (run by ``run``) as a span of the message's trace, a metric
    and a log line."""
    info = workflow.info()
    started = workflow.time()
    with span(
        "chat.turn",
        attributes={
            "mesh.session.id": info.workflow_id,
            "mesh.turn": number,
            "temporal.namespace": info.namespace,
            "gen_ai.request.model": model,
        },
    ) as turn_span:
        reply = await run()
        outcome = "ok" if reply.ok else "interrupted" if reply.interrupted else "failed"
        usage = reply.usage
        turn_span.set_attributes(
            {
                "mesh.outcome": outcome,
                "mesh.tool_calls": len(reply.tools),
                "gen_ai.usage.input_tokens": usage.input_tokens,
                "gen_ai.usage.output_tokens": usage.output_tokens,
            }
        )
        if not reply.ok:
            turn_span.set_status(Status(StatusCode.ERROR, outcome))
        metrics.turn(outcome, model)
        metrics.tokens(model, usage.input_tokens, usage.output_tokens)
        log_event(
            log,
            f"turn {number} {outcome}",
            session=info.workflow_id,
            turn=number,
            namespace=info.namespace,
            model=model,
            tools=len(reply.tools),
            model_calls=usage.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            duration_ms=round((workflow.time() - started) * 1000, 1),
        )
    return reply
