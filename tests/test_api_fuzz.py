"""The HTTP API fuzzed by schemathesis from its own OpenAPI document, against the
real mesh: no 5xx, and every response as the document says (status codes,
content types, bodies, server-sent events), including stateful sequences
(create, use, delete).

Schemathesis runs as a process of its own: the test session's workers share
this process's event loop, which must keep serving them meanwhile. The
never-ending ``/events`` stream is left out (it is covered by tests/test_api.py).
Creating a session with a tool limit is fuzzed without the check that every
schema-valid body is accepted: whether a team or tool exists is known only from
the catalogs at run time, and an unknown one is a 422 by design.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.conftest import WebApi

pytestmark = pytest.mark.asyncio

EXAMPLES = "15"
COMMON = [
    "--checks", "all",
    # Starlette answers an unknown method on a path with the first route's Allow.
    "--exclude-checks", "allow_header_conformance",
    "--max-examples", EXAMPLES,
    "--request-timeout", "30",
    "--seed", "20261122",
    "--generation-database", "none",
    "--exclude-path", "/api/sessions/{session_id}/events",
]  # fmt: skip


async def schemathesis(web_api: WebApi, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "run", f"{web_api.url}/openapi.json",
        "--header", f"Authorization: Bearer {web_api.token}", *COMMON, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 600)
    return process.returncode or 0, output.decode(errors="replace")


async def test_every_operation_answers_as_its_openapi_document_says(web_api: WebApi) -> None:
    code, output = await schemathesis(
        web_api, "--exclude-operation-id", "create_session_api_sessions_post"
    )
    assert code == 0, output[-6000:]
    assert "Tested: 8" in output, output[-3000:]


async def test_creating_sessions_never_fails_on_the_server(web_api: WebApi) -> None:
    code, output = await schemathesis(
        web_api,
        "--include-operation-id", "create_session_api_sessions_post",
        "--exclude-checks", "allow_header_conformance,positive_data_acceptance",
    )  # fmt: skip
    assert code == 0, output[-6000:]
