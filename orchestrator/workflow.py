"""The chat session: one workflow per conversation, one Update per message."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from agents import Agent, RunConfig, Runner
    from agents.exceptions import AgentsException, MaxTurnsExceeded
    from temporalio.contrib.workflow_streams import WorkflowStream
    from temporalio.openai_agents import AgentsWorkflowError

    from meshkit.toolkit.catalog import ToolCatalog
    from meshkit.toolkit.policy import ApprovalPolicy
    from orchestrator import catalogs
    from orchestrator.contract import (
        COMPACT,
        DECIDE,
        END,
        EVENTS_TOPIC,
        HISTORY,
        INTERRUPT,
        LIMIT_TOOLS,
        MESSAGE_PROGRESS,
        MODEL_TOPIC,
        SEND_MESSAGE,
        STATUS,
        STREAM_OFFSET_QUERY,
        UNDO,
        WORKFLOW_TYPE,
        ApprovalDecision,
        BadMessage,
        ChatReply,
        ChatRequest,
        MessageProgress,
        NothingToUndo,
        NoTurnInProgress,
        SessionActivity,
        SessionEnded,
        SessionEvent,
        SessionResult,
        SessionStatus,
        TokenUsage,
        ToolCall,
        Turn,
        UnknownTool,
        check_tool_names,
        message_problem,
    )
    from orchestrator.failures import turn_failure
    from orchestrator.memory import compact, drop_last_turn
    from orchestrator.model_calls import (
        MODEL_PLAN_ACTIVITY,
        PLAN_PATCH,
        planned_model,
        streamed_model,
    )
    from orchestrator.model_stream import ModelInputs
    from orchestrator.models.hints import dumped_tools
    from orchestrator.session_approvals import Approvals
    from orchestrator.session_types import (
        ANSWERED_MESSAGES_KEPT,
        AnsweredMessage,
        ModelPlan,
        ModelPlanRequest,
        SessionState,
        team_status,
    )
    from orchestrator.shared_catalogs import SHARED_PATCH
    from orchestrator.tools import (
        Approval,
        UnknownToolError,
        allowed_names,
        build_tools,
        tool_hints,
    )
    from orchestrator.turn_clock import TurnSwitches, patched, turn_clock
    from orchestrator.turns import earlier_turns, observed, turn_agent

FAREWELL = "Session ended. Goodbye!"
INTERRUPTED = "(turn interrupted by the user before it finished)"


# A session lives for days and must not keep an old orchestrator build alive:
# each workflow task runs on the deployment's current version, so a rollout
# moves open sessions to the new code at their next task. That makes every
# change here one that must replay the histories of older builds
# (tests/test_determinism.py, tests/test_recorded_histories.py), and makes
# `workflow.patched` the way to change the commands a turn issues.
@workflow.defn(name=WORKFLOW_TYPE, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ChatSessionWorkflow:
    """A conversation with the agent.

    Each ``send_message`` Update runs one agent turn and returns the reply.
    Turns run one at a time, in the order their Updates were accepted; the
    conversation so far is kept as model input items (bounded by the token
    budget), so every turn sees the recent conversation. Between turns the
    run continues as new when its history grows large, carrying the state.
    """

    @workflow.init
    def __init__(self, state: SessionState) -> None:
        self._state = state
        self._ended = False
        self._turn_lock = asyncio.Lock()
        self._turn_task: asyncio.Task[ChatReply] | None = None
        self._interrupting = False
        self._calls: list[ToolCall] = []
        self._approvals = Approvals(self._publish)
        self._built_tools: tuple[Any, list[Any], str] | None = None
        # Inputs of streamed model calls in flight: their activity reads them by Query.
        self._model_inputs = ModelInputs()
        # Catalog fetches running beside the turns, by team (catalogs.CATALOG_PATCH).
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        # Messages of this run not answered yet, by Update id: where their
        # turn started, or None while they wait for the turn before them.
        self._unanswered: dict[str, AnsweredMessage | None] = {}
        # The session's events, pushed to clients (Workflow Streams: publishes
        # land in workflow state, clients long-poll with an Update); carried
        # across continue-as-new. The model activity publishes the model's
        # own stream events to another topic of the same stream.
        self._stream = WorkflowStream(state.stream)
        self._events = self._stream.topic(EVENTS_TOPIC, type=SessionEvent)

    @workflow.run
    async def run(self, state: SessionState) -> SessionResult:
        while True:
            await workflow.wait_condition(lambda: self._ended or self._history_is_large())
            # Subscribers long-poll with Updates: release them (they follow
            # the session to its next run, or see it end), then let in-flight
            # Updates return their replies before the run closes.
            self._stream.detach_pollers()
            # Catalog fetches beside the turns are not waited for: with turns
            # arriving back to back one is nearly always in flight, and a new run
            # fetches again what its state does not hold.
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._ended:
                return SessionResult(turns=self._state.turn_count)
            if self._history_is_large():
                self._state.runs += 1
                self._state.stream = self._retained_stream()
                # Every field, also those only changed in place (catalogs,
                # turns, answered ids): the Agents plugin's converter leaves
                # out the fields of a model that were never assigned. The next
                # run keeps the session's workflow task timeout, chosen where
                # it started (orchestrator.failover); not a replayed command.
                workflow.continue_as_new(
                    self._state.model_copy(update=dict(self._state)),
                    task_timeout=workflow.info().task_timeout,
                )

    # --- chat -------------------------------------------------------------------------

    # A message's Update id is its idempotency key: a client that sends the
    # same message again (after a lost connection, a timeout, a retried HTTP
    # request) uses the same id, and the message runs one turn:
    # - in the run that accepted it, Temporal itself deduplicates the id, in
    #   flight or completed: the repeat is attached to the first Update and
    #   gets its outcome; this handler never sees it;
    # - a run that continued as new does not know the ids of its earlier runs,
    #   so the session carries the latest answered ids in its state and
    #   answers a repeat from the turn recorded for it, running nothing. A
    #   message still queued or in flight cannot be repeated into a new run:
    #   the session continues as new only when every handler has finished.
    # The lookup issues no command, so histories recorded before it replay.
    @workflow.update(name=SEND_MESSAGE)
    async def send_message(self, request: ChatRequest) -> ChatReply:
        # The turn's clock (TURN_CLOCK_PATCH) and every patch the turn asks,
        # read here, before any await, in the activation that delivered the
        # message: read after a local activity's result (the turn before this
        # one ending with a model call), a time or a patch could be read in
        # another task on replay.
        switches = TurnSwitches.now()
        message_id = _update_id()
        answered = self._state.answered.get(message_id)
        if answered is not None:
            return self._answered_again(answered)
        self._unanswered[message_id] = None
        try:
            async with self._turn_lock:
                self._turn_task = asyncio.create_task(
                    self._run_turn(request.text.strip(), message_id, switches)
                )
                try:
                    return await self._turn_task
                finally:
                    self._turn_task = None
        finally:
            self._remember_answer(message_id)

    @send_message.validator
    def _validate_message(self, request: ChatRequest) -> None:
        # Rejected here, a message never enters history and changes nothing.
        if self._ended:
            raise SessionEnded("this session has ended; start a new one").failure()
        problem = message_problem(request.text, self._state.config.max_message_chars)
        if problem:
            raise BadMessage(problem).failure()

    @workflow.query(name=MESSAGE_PROGRESS)
    def message_progress(self, message_id: str) -> MessageProgress | None:
        """Where the turn of the message sent with this Update id is; None if unknown."""
        answered = self._state.answered.get(message_id)
        if answered is not None:
            return MessageProgress(turn=answered.turn, offset=answered.offset, done=True)
        if message_id not in self._unanswered:
            return None
        started = self._unanswered[message_id]
        if started is None:
            return MessageProgress()
        return MessageProgress(turn=started.turn, offset=started.offset)

    def _remember_answer(self, message_id: str) -> None:
        started = self._unanswered.pop(message_id, None)
        if started is None:
            return
        answered = self._state.answered
        answered[message_id] = started
        for oldest in list(answered)[:-ANSWERED_MESSAGES_KEPT]:
            del answered[oldest]

    def _answered_again(self, answered: AnsweredMessage) -> ChatReply:
        for turn in self._state.turns:
            if turn.turn == answered.turn:
                return turn.as_reply()
        return ChatReply(
            turn=answered.turn,
            text=f"This message was answered in turn {answered.turn}, which is no longer kept.",
            ok=False,
        )

    @workflow.update(name=INTERRUPT)
    async def interrupt(self) -> str:
        """Cancel the turn in flight: its model call and tool calls are cancelled."""
        if (again := self._done_before()) is not None:
            return again
        task = self._turn_task
        assert task is not None
        self._interrupting = True
        task.cancel()
        await workflow.wait_condition(lambda: self._turn_task is not task)
        self._interrupting = False
        return self._remember_done(f"turn {self._state.turn_count} interrupted")

    @interrupt.validator
    def _validate_interrupt(self) -> None:
        if self._done_before() is not None:
            return
        if self._turn_task is None:
            raise NoTurnInProgress("no turn is in progress").failure()

    @workflow.update(name=DECIDE)
    async def decide(self, decision: ApprovalDecision) -> str:
        """Approve or deny a tool call waiting for approval."""
        if (again := self._done_before()) is not None:
            return again
        return self._remember_done(self._approvals.decide(decision))

    @decide.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        if self._done_before() is None:
            self._approvals.check(decision)

    @workflow.update(name=LIMIT_TOOLS)
    async def limit_tools(self, names: list[str]) -> list[str]:
        """Limit the session to some teams and tools, checked against their catalogs.

        Returns the tool names the limit allows now. An unknown name fails the
        Update and leaves the limit as it was.
        """
        # Before the first await, as every patch check of a turn (see send_message).
        clock = turn_clock()
        first_contact = patched(catalogs.FIRST_CONTACT_PATCH)
        shared = patched(SHARED_PATCH)
        async with self._turn_lock:
            config = self._state.config
            await catalogs.refresh(
                config, self._state.catalogs, now=clock, first_contact=first_contact, shared=shared
            )
            try:
                allowed = allowed_names(check_tool_names(names), self._catalogs(), config.teams)
            except (UnknownToolError, ValueError) as err:
                raise UnknownTool(str(err)).failure() from None
            config.tools = check_tool_names(names)
            return sorted(allowed or [])

    @limit_tools.validator
    def _validate_limit(self, names: list[str]) -> None:
        if self._ended:
            raise SessionEnded("this session has ended; start a new one").failure()
        try:
            check_tool_names(names)
        except ValueError as err:
            raise UnknownTool(str(err)).failure() from None

    @workflow.update(name=UNDO)
    async def undo(self) -> str:
        """Drop the last turn from what the model sees next (history keeps it)."""
        if (again := self._done_before()) is not None:
            return again
        async with self._turn_lock:
            items, dropped = drop_last_turn(self._state.items)
            if not dropped:
                raise NothingToUndo("there is no turn to undo").failure()
            self._state.items = items
            return self._remember_done(
                f"turn {self._state.turn_count} is no longer part of the conversation"
            )

    @workflow.update(name=COMPACT)
    async def compact_now(self) -> str:
        """Compact the conversation now: the model sees only the last turn, with a note."""
        if (again := self._done_before()) is not None:
            return again
        async with self._turn_lock:
            before = self._state.compacted_turns
            self._state.items, self._state.compacted_turns = compact(self._state.items, 0, before)
            return self._remember_done(
                f"{self._state.compacted_turns - before} earlier turn(s) compacted away"
            )

    @undo.validator
    def _validate_undo(self) -> None:
        if self._ended:
            raise SessionEnded("this session has ended; start a new one").failure()

    @compact_now.validator
    def _validate_compact(self) -> None:
        if self._ended:
            raise SessionEnded("this session has ended; start a new one").failure()

    # Decisions, interrupts, undos and compactions are deduplicated the same
    # way as messages: Temporal within a run, the state's record across runs,
    # so a repeat that reaches a later run (a retry after a long outage) gets
    # the first answer instead of undoing a second turn or being refused. The
    # validators let a recorded repeat through; the handlers answer it.
    def _done_before(self) -> str | None:
        return self._state.done.get(_update_id())

    def _remember_done(self, result: str) -> str:
        done = self._state.done
        done[_update_id()] = result
        for oldest in list(done)[:-ANSWERED_MESSAGES_KEPT]:
            del done[oldest]
        return result

    @workflow.update(name=END)
    async def end_chat(self) -> str:
        # Wait for the turn in flight, if any, so its reply is not cut off.
        async with self._turn_lock:
            self._ended = True
        return FAREWELL

    @end_chat.validator
    def _validate_end(self) -> None:
        if self._ended:
            raise SessionEnded("this session has already ended").failure()

    @workflow.query(name=HISTORY)
    def history(self) -> list[Turn]:
        return list(self._state.turns)

    @workflow.query(name=STATUS)
    def status(self) -> SessionStatus:
        info = workflow.info()
        in_turn = self._turn_task is not None
        turn = self._state.turn_count + (1 if in_turn else 0)
        last = self._state.turns[-1].usage if self._state.turns else TokenUsage()
        return SessionStatus(
            state=self._activity(),
            turn=turn,
            tools=list(self._calls),
            pending_approvals=list(self._approvals.pending.values()),
            usage_last_turn=last,
            usage_total=self._state.usage_total,
            usage_by_turn={t.turn: t.usage for t in self._state.turns},
            tools_by_location=dict(self._state.tools_by_location),
            teams={
                team: team_status(self._state.catalogs.get(team))
                for team in self._state.config.teams
            },
            tool_limit=self._state.config.tools,
            compacted_turns=self._state.compacted_turns,
            runs=self._state.runs,
            history_events=info.get_current_history_length(),
            history_bytes=info.get_current_history_size(),
        )

    # --- the tool host: progress and approvals ---------------------------------------

    def tool_started(self, call: ToolCall) -> None:
        self._calls.append(call)
        self._publish(
            "tool_started",
            call_id=call.call_id,
            name=call.name,
            location=call.location,
            arguments=call.arguments,
        )

    def tool_finished(self, call: ToolCall) -> None:
        by_location = self._state.tools_by_location
        by_location[call.location] = by_location.get(call.location, 0) + 1
        self._publish(
            "tool_finished",
            call_id=call.call_id,
            name=call.name,
            location=call.location,
            state=call.state,
            ok=call.ok,
            duration_ms=call.duration_ms,
            error=call.error,
        )

    def _publish(self, kind: str, turn: int | None = None, **fields: Any) -> None:
        number = turn if turn is not None else self._state.turn_count + 1
        self._events.publish(
            SessionEvent(kind=kind, turn=number, at=workflow.now(), **fields)  # type: ignore[arg-type]
        )

    def _retained_stream(self) -> Any:
        # The stream is carried into the next run; keep its recent events only,
        # so a session's state stays small however long it lives. A client
        # resuming from an older offset starts at the oldest retained event.
        state = self._stream.get_state()
        excess = len(state.log) - self._state.config.retained_events
        if excess > 0:
            self._stream.truncate(state.base_offset + excess)
            state = self._stream.get_state()
        return state

    def catalog_stale(self, team: str) -> None:
        known = self._state.catalogs.get(team)
        if known is not None:
            known.stale = True

    async def await_approval(
        self, call: ToolCall, arguments: dict[str, Any], policy: ApprovalPolicy
    ) -> Approval:
        timeout = timedelta(seconds=self._state.config.approval_timeout_s)
        return await self._approvals.wait(call, arguments, policy, timeout)

    # --- turns ------------------------------------------------------------------------

    @property
    def turn(self) -> int:
        """The number of the turn in flight (or of the next one)."""
        return self._state.turn_count + 1

    async def _run_turn(self, text: str, message_id: str, switches: TurnSwitches) -> ChatReply:
        """One turn, as a span of the message's trace, a metric and a log line."""
        number = self.turn
        return await observed(
            number,
            self._state.config.model,
            lambda: self._turn(number, text, message_id, switches),
        )

    async def _turn(
        self, number: int, text: str, message_id: str, switches: TurnSwitches
    ) -> ChatReply:
        self._calls = []
        config = self._state.config
        offset = workflow.get_query_handler(STREAM_OFFSET_QUERY)()  # type: ignore[misc]
        self._unanswered[message_id] = AnsweredMessage(turn=number, offset=offset)
        self._publish("turn_started", number, text=text)
        unavailable: dict[str, str] = {}
        beside = self._refreshing if switches.catalogs_beside else None
        try:
            plan = await self._model_plan(switches.clock)
            unavailable = await catalogs.refresh(
                config,
                self._state.catalogs,
                beside,
                switches.clock,
                switches.first_contact,
                switches.shared_catalogs,
                switches.refresh_ahead,
            )
            tools, hints = self._tools()
        except asyncio.CancelledError:
            if not self._interrupting:
                raise
            reply = self._failed(number, text, INTERRUPTED, interrupted=True)
            self._record(text, reply)
            return reply
        except UnknownToolError as err:
            reply = self._failed(number, text, f"This session's tool limit is wrong: {err}")
            self._record(text, reply)
            return reply
        agent = turn_agent(config, tools, hints, unavailable, plan)
        streams_lean = plan is not None and plan.stream and switches.lean_streams
        if streams_lean:
            agent.model = streamed_model(config.model, self._model_inputs, self._publish_text)
        elif plan is not None:
            agent.model = planned_model(config.model, plan, agent)
        items, self._state.compacted_turns = compact(
            self._state.items, config.context_budget_tokens, self._state.compacted_turns
        )
        self._state.items = items
        new_input: list[Any] = [{"role": "user", "content": text}]
        try:
            result = await self._run_agent(
                agent, new_input, earlier_turns(items), config.max_agent_turns, plan, streams_lean
            )
        except asyncio.CancelledError:
            if not self._interrupting:
                raise  # the workflow itself is being cancelled
            reply = self._failed(number, text, INTERRUPTED, interrupted=True)
        except MaxTurnsExceeded:
            reply = self._failed(
                number,
                text,
                f"I stopped after {config.max_agent_turns} model calls without reaching an "
                "answer. Try a simpler or more specific question.",
            )
        except AgentsException as err:
            reply = self._failed(number, text, f"I could not finish this turn: {err}")
        except Exception as err:
            # A plain exception escaping a handler fails the workflow task, which
            # Temporal retries forever; the user gets a clear reply instead.
            workflow.logger.exception("turn %s failed", number)
            reply = self._failed(number, text, f"I could not finish this turn: {turn_failure(err)}")
        else:
            self._state.items = [
                *items,
                *(dict(item) for item in result.to_input_list()),  # type: ignore[call-overload]
            ]
            usage = result.context_wrapper.usage
            reply = ChatReply(
                turn=number,
                text=str(result.final_output),
                ok=True,
                tools=list(self._calls),
                usage=TokenUsage(
                    requests=usage.requests,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    total_tokens=usage.total_tokens,
                ),
            )
        reply.unavailable = unavailable
        self._record(text, reply)
        return reply

    async def _model_plan(self, clock: datetime | None) -> ModelPlan | None:
        """How this turn's model calls run, asked of the worker when due at
        ``clock`` (the turn's clock; ``workflow.now()`` in older histories).

        None for a run that began before sessions planned their model calls:
        it keeps the worker-wide way until it continues as new.
        """
        if not patched(PLAN_PATCH):
            return None
        config = self._state.config
        known = self._state.model_plan
        now = clock or workflow.now()
        if (
            known is None
            or known.asked_at is None
            or now - known.asked_at >= timedelta(seconds=config.model_plan_ttl_s)
        ):
            known = await workflow.execute_local_activity(
                MODEL_PLAN_ACTIVITY,
                ModelPlanRequest(model=config.model, stream=config.stream),
                result_type=ModelPlan,
                start_to_close_timeout=timedelta(seconds=5),
                summary="model plan",
            )
            known.asked_at = now
            self._state.model_plan = known
        return known

    async def _run_agent(
        self,
        agent: Agent[Any],
        new_input: list[Any],
        run_config: RunConfig,
        max_turns: int,
        plan: ModelPlan | None,
        streams_lean: bool,
    ) -> Any:
        """Run the agent; when the plan streams, the model's text goes to the session's
        stream (published by the model call itself, when ``streams_lean``)."""
        if streams_lean or (plan is not None and not plan.stream):
            return await Runner.run(agent, new_input, run_config=run_config, max_turns=max_turns)
        try:
            streamed = Runner.run_streamed(
                agent, new_input, run_config=run_config, max_turns=max_turns
            )
        except AgentsWorkflowError:
            return await Runner.run(agent, new_input, run_config=run_config, max_turns=max_turns)
        async for _ in streamed.stream_events():
            pass  # the model activity has published them; clients read the stream
        return streamed

    def _publish_text(self, text: str) -> None:
        """The model's text, as a streamed model call publishes it (orchestrator.model_stream)."""
        self._stream.topic(MODEL_TOPIC).publish(
            {"type": "response.output_text.delta", "delta": text}
        )

    def _tools(self) -> tuple[list[Any], str]:
        """The turn's tools and their hints, built again only when a catalog or the
        session's limit changed (not at every turn: both walk every catalog)."""
        config = self._state.config
        catalogs = self._catalogs()
        key = (
            tuple(config.tools or ()),
            tuple((team, self._state.catalogs[team].fetched_at) for team in sorted(catalogs)),
        )
        if self._built_tools is None or self._built_tools[0] != key:
            self._built_tools = (
                key,
                build_tools(config, catalogs, self),
                dumped_tools(tool_hints(config, catalogs)),
            )
        return self._built_tools[1], self._built_tools[2]

    def _catalogs(self) -> dict[str, ToolCatalog]:
        """The catalogs of the teams that answered the last time they were asked."""
        return {
            team: known.catalog
            for team, known in self._state.catalogs.items()
            if team in self._state.config.teams and known.available and known.catalog
        }

    def _failed(self, number: int, text: str, message: str, interrupted: bool = False) -> ChatReply:
        # Keep the exchange in memory so the next turn knows this one failed.
        marker = INTERRUPTED if interrupted else f"(turn failed) {message}"
        for call in self._calls:
            # Tool tasks cancelled with the turn may not have reported yet.
            if call.state in ("running", "awaiting_approval"):
                call.state, call.ok, call.error = "error", False, "interrupted"
        self._state.items.extend(
            [{"role": "user", "content": text}, {"role": "assistant", "content": marker}]
        )
        return ChatReply(
            turn=number, text=message, ok=False, interrupted=interrupted, tools=list(self._calls)
        )

    def _record(self, text: str, reply: ChatReply) -> None:
        self._publish(
            "reply",
            reply.turn,
            text=reply.text,
            ok=reply.ok,
            interrupted=reply.interrupted,
            usage=reply.usage,
            unavailable=reply.unavailable,
        )
        state = self._state
        state.turn_count = reply.turn
        state.usage_total = state.usage_total.plus(reply.usage)
        state.turns.append(
            Turn(
                turn=reply.turn,
                user=text,
                reply=reply.text,
                ok=reply.ok,
                interrupted=reply.interrupted,
                tools=reply.tools,
                usage=reply.usage,
                unavailable=reply.unavailable,
            )
        )
        del state.turns[: -state.config.kept_turns]

    def _activity(self) -> SessionActivity:
        if self._ended:
            return "ended"
        if self._turn_task is None:
            return "idle"
        if self._approvals.pending:
            return "awaiting_approval"
        if any(call.state == "running" for call in self._calls):
            return "running_tools"
        return "thinking"

    def _history_is_large(self) -> bool:
        if self._turn_task is not None:
            return False
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_size() > self._state.config.max_run_history_bytes
        )


def _update_id() -> str:
    info = workflow.current_update_info()
    assert info is not None  # called from an Update handler
    return info.id
