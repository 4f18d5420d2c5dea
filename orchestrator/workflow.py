"""The chat session: one workflow per conversation, one Update per message."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agents import Agent, Runner
    from agents.exceptions import AgentsException, MaxTurnsExceeded

    from orchestrator.session_types import (
        ChatReply,
        ChatRequest,
        SessionState,
        SessionSummary,
        ToolCall,
        Turn,
    )
    from orchestrator.tools import build_tools

INSTRUCTIONS = """\
You are the assistant of a company whose teams each own some of your tools.
Use the tools for anything they cover (arithmetic, weather, network addresses,
Jira metrics, stock prices, investment returns) instead of answering from memory,
and answer from their results. When a tool reports an error, tell the user what
went wrong in plain words and what they could try instead. Be concise."""

FAREWELL = "Session ended. Goodbye!"


@workflow.defn(name="ChatSession")
class ChatSessionWorkflow:
    """A conversation with the agent.

    Each ``send_message`` Update runs one agent turn and returns the reply.
    Turns run one at a time, in the order their Updates were accepted; the
    conversation so far is kept as model input items, so every turn sees it.
    """

    @workflow.init
    def __init__(self, state: SessionState) -> None:
        self._state = state
        self._ended = False
        self._turn_lock = asyncio.Lock()

    @workflow.run
    async def run(self, state: SessionState) -> SessionSummary:
        await workflow.wait_condition(lambda: self._ended)
        # Let in-flight Updates return their replies before the run closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return SessionSummary(turns=len(self._state.turns))

    @workflow.update
    async def send_message(self, request: ChatRequest) -> ChatReply:
        async with self._turn_lock:
            return await self._run_turn(request.text.strip())

    @send_message.validator
    def _validate_message(self, request: ChatRequest) -> None:
        # Rejected here, a message never enters history and changes nothing.
        if self._ended:
            raise ValueError("this session has ended; start a new one")
        text = request.text.strip()
        if not text:
            raise ValueError("the message is empty")
        limit = self._state.config.max_message_chars
        if len(text) > limit:
            raise ValueError(f"the message has {len(text)} characters; the limit is {limit}")

    @workflow.update
    async def end_chat(self) -> str:
        # Wait for the turn in flight, if any, so its reply is not cut off.
        async with self._turn_lock:
            self._ended = True
        return FAREWELL

    @end_chat.validator
    def _validate_end(self) -> None:
        if self._ended:
            raise ValueError("this session has already ended")

    @workflow.query
    def history(self) -> list[Turn]:
        return list(self._state.turns)

    async def _run_turn(self, text: str) -> ChatReply:
        number = len(self._state.turns) + 1
        calls: list[ToolCall] = []
        config = self._state.config
        agent = Agent(
            name="Mesh assistant",
            instructions=INSTRUCTIONS,
            model=config.model,
            tools=build_tools(config, calls.append),
        )
        new_input: list[Any] = [*self._state.items, {"role": "user", "content": text}]
        try:
            result = await Runner.run(agent, input=new_input, max_turns=config.max_agent_turns)
        except MaxTurnsExceeded:
            reply = self._failed(
                number,
                text,
                calls,
                f"I stopped after {config.max_agent_turns} model calls without reaching an "
                "answer. Try a simpler or more specific question.",
            )
        except AgentsException as err:
            reply = self._failed(number, text, calls, f"I could not finish this turn: {err}")
        except ApplicationError:
            raise
        except Exception as err:
            # A plain exception escaping a handler fails the workflow task, which
            # Temporal retries forever; the user gets a clear reply instead.
            workflow.logger.exception("turn %s failed", number)
            reply = self._failed(
                number, text, calls, f"I could not finish this turn: {_cause(err)}"
            )
        else:
            self._state.items = [dict(item) for item in result.to_input_list()]  # type: ignore[arg-type]
            reply = ChatReply(turn=number, text=str(result.final_output), ok=True, tools=calls)
        self._state.turns.append(
            Turn(turn=number, user=text, reply=reply.text, ok=reply.ok, tools=reply.tools)
        )
        return reply

    def _failed(self, number: int, text: str, calls: list[ToolCall], message: str) -> ChatReply:
        # Keep the exchange in memory so the next turn knows this one failed.
        self._state.items.extend(
            [
                {"role": "user", "content": text},
                {"role": "assistant", "content": f"(turn failed) {message}"},
            ]
        )
        return ChatReply(turn=number, text=message, ok=False, tools=calls)


def _cause(err: BaseException) -> str:
    current: BaseException = err
    while True:
        nxt = getattr(current, "cause", None) or current.__cause__
        if nxt is None:
            return getattr(current, "message", None) or str(current) or type(current).__name__
        current = nxt
