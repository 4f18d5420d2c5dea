"""A corpus of bad input: every case gets a clear error and changes nothing."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from meshkit.mesh import Mesh
from meshkit.toolkit.store import IdempotentStore
from orchestrator.contract import SessionConfig, SessionEnded, SessionError, SessionNotFound
from orchestrator.session_client import SessionClient
from tests.helpers import SCRIPTED, ScriptedModel, call, say
from tests.reliability import count

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parent.parent

# --- messages ------------------------------------------------------------------------------

BAD_MESSAGES = [
    ("", "empty"),
    (" ", "empty"),
    ("\n\n\t", "empty"),
    ("x" * 8_001, "limit is 8000"),
    ("y" * 100_000, "limit is 8000"),
    ("hello\x00world", "control characters"),
    ("ring \x07 the bell", "control characters"),
    ("escape \x1b[31m red", "control characters"),
    ("delete \x7f me", "control characters"),
    ("abc \u202e txt.exe", "control characters"),
    ("isolate \u2066 this", "control characters"),
    ("c1 \x85 next line", "control characters"),
]


@pytest.mark.parametrize(
    ("text", "reason"), BAD_MESSAGES, ids=[f"m{i}" for i in range(len(BAD_MESSAGES))]
)
async def test_bad_messages_are_rejected_before_they_touch_the_session(
    client: Client, running_mesh: Mesh, text: str, reason: str
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"bad-msg-{uuid.uuid4().hex[:8]}", model="offline"
    )
    await handle.send("What is 1 + 1?", 60)
    before = await handle.history()
    with pytest.raises(SessionError, match=reason):
        await handle.send(text, 30)
    assert await handle.history() == before
    count("bad_inputs")


@pytest.mark.parametrize(
    "text",
    [
        "¿Cuánto es 7 * 6?",
        "Что такое 7 * 6?",
        "7 * 6 是多少？",
        "ما هو 7 * 6؟",
        "7 * 6 😀 ?",
        "line one\nline two: 7 * 6",
    ],
)
async def test_mixed_scripts_and_emoji_are_plain_text_and_answered(
    client: Client, running_mesh: Mesh, text: str
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"script-{uuid.uuid4().hex[:8]}", model="offline"
    )
    reply = await handle.send(text, 60)
    assert reply.ok and "42" in reply.text
    count("bad_inputs")
    count("turns")


async def test_messages_to_an_ended_or_unknown_session_are_refused(
    client: Client, running_mesh: Mesh
) -> None:
    handle = await SessionClient(client, running_mesh).open(
        f"gone-{uuid.uuid4().hex[:8]}", model="offline"
    )
    await handle.end()
    with pytest.raises(SessionEnded, match="has ended"):
        await handle.send("hello?", 30)
    with pytest.raises(SessionEnded, match="has ended"):
        await handle.end()
    with pytest.raises(SessionNotFound, match="no session"):
        await SessionClient(client, running_mesh).attach(f"never-{uuid.uuid4().hex[:8]}")
    unknown = SessionClient(client, running_mesh).session(f"never-{uuid.uuid4().hex[:8]}")
    with pytest.raises(SessionEnded, match="ended or does not exist"):
        await unknown.send("hello?", 30)
    count("bad_inputs", 4)


# --- tool arguments ------------------------------------------------------------------------

BAD_TOOL_CALLS = [
    ("stock_price", {"ticker": "123"}, "invalid ticker"),
    ("stock_price", {"ticker": ""}, "invalid ticker"),
    ("stock_price", {"ticker": "TOOLONG"}, "invalid ticker"),
    ("stock_price", {"ticker": "AAPL; DROP TABLE"}, "invalid ticker"),
    ("stock_price", {"ticker": "../etc/passwd"}, "invalid ticker"),
    ("stock_price", {"ticker": "ＡＡＰＬ"}, "invalid ticker"),
    ("stock_price", {"ticker": "NONE"}, "does not know it"),
    ("stock_price", {}, "invalid arguments"),
    ("jira_metrics", {"project": "ops-1"}, "invalid Jira project key"),
    ("jira_metrics", {"project": "A"}, "invalid Jira project key"),
    ("jira_metrics", {"project": "1OPS"}, "invalid Jira project key"),
    ("jira_metrics", {"project": 'OPS" OR 1=1'}, "invalid Jira project key"),
    ("jira_metrics", {"project": 42}, "invalid arguments"),
    ("calculate_roi", {"principal": 0, "annual_rate": 5, "years": 10}, "principal must be"),
    ("calculate_roi", {"principal": -1000, "annual_rate": 5, "years": 10}, "principal must be"),
    ("calculate_roi", {"principal": 1e300, "annual_rate": 5, "years": 10}, "principal must be"),
    ("calculate_roi", {"principal": "NaN", "annual_rate": 5, "years": 10}, "finite number"),
    ("calculate_roi", {"principal": 1000, "annual_rate": "inf", "years": 10}, "finite number"),
    (
        "submit_expense",
        {"amount": "Infinity", "currency": "EUR", "description": "everything"},
        "finite number",
    ),
    ("calculate_roi", {"principal": 1000, "annual_rate": -100, "years": 10}, "annual_rate"),
    ("calculate_roi", {"principal": 1000, "annual_rate": 1e9, "years": 10}, "annual_rate"),
    ("calculate_roi", {"principal": 1000, "annual_rate": 5, "years": -3}, "years must be"),
    ("calculate_roi", {"principal": 1000, "annual_rate": 5, "years": 1e6}, "years must be"),
    ("calculate_roi", {"principal": "lots", "annual_rate": 5, "years": 1}, "invalid arguments"),
    ("calculator", {"expression": "__import__('os').system('rm -rf /')"}, "unsupported element"),
    ("calculator", {"expression": "open('/etc/passwd').read()"}, "unsupported element"),
    ("calculator", {"expression": "(lambda: 1)()"}, "unsupported element"),
    ("calculator", {"expression": "[x for x in range(10**9)]"}, "unsupported element"),
    ("calculator", {"expression": "9**9**9**9"}, "exponent larger"),
    ("calculator", {"expression": "().__class__.__bases__"}, "unsupported element"),
    ("calculator", {"expression": "1/0"}, "division by zero"),
    ("calculator", {"expression": "2 +"}, "not an arithmetic expression"),
    ("calculator", {"expression": ""}, "empty expression"),
    ("calculator", {"expression": "1+" * 400 + "1"}, "longer than 500"),
    ("weather", {"city": ""}, "city must be"),
    ("weather", {"city": "x" * 101}, "city must be"),
    (
        "submit_expense",
        {"amount": -5, "currency": "EUR", "description": "refund me"},
        "amount must be",
    ),
    (
        "submit_expense",
        {"amount": 0, "currency": "EUR", "description": "nothing"},
        "amount must be",
    ),
    (
        "submit_expense",
        {"amount": 1e7, "currency": "EUR", "description": "a yacht"},
        "amount must be",
    ),
    (
        "submit_expense",
        {"amount": 10.001, "currency": "EUR", "description": "fractions"},
        "decimal places",
    ),
    ("submit_expense", {"amount": 10, "currency": "EURO", "description": "taxi ride"}, "currency"),
    ("submit_expense", {"amount": 10, "currency": "€", "description": "taxi ride"}, "currency"),
    (
        "submit_expense",
        {"amount": 10, "currency": "EUR", "description": "x"},
        "description must be",
    ),
    ("create_ticket", {"project": "OPS", "summary": "   ", "description": ""}, "needs a summary"),
    ("create_ticket", {"project": "OPS", "summary": "s" * 201, "description": ""}, "limit is 200"),
    (
        "create_ticket",
        {"project": "not a key", "summary": "broken", "description": ""},
        "invalid Jira project key",
    ),
    (
        "create_ticket",
        {"project": "OPS", "summary": "ok", "description": "d" * 5001},
        "limit is 5000",
    ),
    ("get_ip", "{not json", "not valid JSON"),
]


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    BAD_TOOL_CALLS,
    ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD_TOOL_CALLS)],
)
async def test_bad_tool_arguments_get_a_clear_error_and_change_nothing(
    client: Client,
    running_mesh: Mesh,
    scripted_model: ScriptedModel,
    stores: Path,
    tool: str,
    args: object,
    message: str,
) -> None:
    expenses = IdempotentStore(stores / "expenses.sqlite", "expenses")
    tickets = IdempotentStore(stores / "tickets.sqlite", "tickets")
    before = (len(expenses.all()), len(tickets.all()))
    config = SessionConfig.for_mesh(running_mesh, model=SCRIPTED)
    handle = await SessionClient(client, running_mesh).open(
        f"bad-arg-{uuid.uuid4().hex[:8]}", config=config
    )
    scripted_model.script(handle.id, call((tool, args)), say("Sorry."))  # type: ignore[arg-type]

    async def approve(pending):  # type: ignore[no-untyped-def]
        from orchestrator.contract import ApprovalDecision

        return ApprovalDecision(approve=True)

    reply = await handle.send("go", 60, approver=approve)
    [record] = reply.tools
    assert record.state == "error" and message in (record.error or ""), record.error
    assert reply.ok and reply.text == "Sorry."
    assert (len(expenses.all()), len(tickets.all())) == before
    count("bad_inputs")


# --- the setup command -----------------------------------------------------------------------

SETUP_CASES = [
    ("missing", None, "mesh file not found"),
    ("not toml", "this is = = not toml", "not valid TOML"),
    (
        "unknown key",
        "[temporal]\ndefault_address='x:1'\nsurprise=1\n[orchestrator]\nnamespace='o'\ntask_queue='q'\n[teams]\n",
        "Extra inputs",
    ),
    (
        "bad endpoint",
        "[temporal]\ndefault_address='x:1'\n[orchestrator]\nnamespace='o'\ntask_queue='q'\n[teams.it]\nnamespace='it'\ntask_queue='q'\nservice='ItService'\nendpoint='it_tools'\n",
        "invalid endpoint name",
    ),
    (
        "bad namespace",
        "[temporal]\ndefault_address='x:1'\n[orchestrator]\nnamespace='has space'\ntask_queue='q'\n[teams]\n",
        "invalid namespace name",
    ),
    ("no orchestrator", "[temporal]\ndefault_address='x:1'\n[teams]\n", "orchestrator"),
    (
        "unreachable",
        "[temporal]\ndefault_address='127.0.0.1:1'\n[orchestrator]\nnamespace='o'\ntask_queue='q'\n[teams]\n",
        "cannot reach Temporal",
    ),
]


@pytest.mark.parametrize(
    ("case", "content", "message"), SETUP_CASES, ids=[c[0] for c in SETUP_CASES]
)
async def test_setup_refuses_a_bad_mesh_file_with_a_clear_message(
    tmp_path: Path, case: str, content: str | None, message: str
) -> None:
    path = tmp_path / "mesh.toml"
    if content is not None:
        path.write_text(content)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.setup", "--mesh", str(path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, (out, err)
    assert message in err.decode(), err.decode()
    assert "Traceback" not in err.decode()
    assert out == b"", "nothing was created"
    count("bad_inputs")
