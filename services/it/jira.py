"""Jira metrics backends: the Jira REST API, or offline demo data.

``JIRA_URL`` (with ``JIRA_EMAIL`` and ``JIRA_API_TOKEN`` for basic auth, or
``JIRA_API_TOKEN`` alone for a bearer token) selects the REST backend; with no
``JIRA_URL`` the demo backend answers, and says so in ``source``.

Counting differs by deployment: Jira Cloud retired ``GET /rest/api/2/search``
in favour of ``POST /rest/api/3/search/approximate-count``, which Server and
Data Center do not have. ``JIRA_API`` picks one (``cloud`` or ``server``);
the default, ``auto``, means cloud for ``*.atlassian.net`` sites.
"""

from __future__ import annotations

import hashlib
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshkit.toolkit.http import raise_for_backend, raise_for_transport
from services.it.contract import JiraMetrics

DEMO_SOURCE = "demo data (set JIRA_URL for a real Jira)"


class JiraSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIRA_", extra="ignore")

    url: str | None = None
    """Base URL of the Jira site, e.g. https://example.atlassian.net; unset means demo data."""
    email: str | None = None
    """Account e-mail for basic auth (Jira Cloud); unset means a bearer token."""
    api_token: SecretStr | None = None
    """API token (Cloud) or personal access token (Server/Data Center)."""
    timeout_s: float = 10.0
    """Timeout of one HTTP request."""
    api: Literal["auto", "cloud", "server"] = "auto"
    """Which count API to use; ``auto`` is cloud for *.atlassian.net, else server."""

    def uses_cloud_api(self) -> bool:
        if self.api != "auto":
            return self.api == "cloud"
        host = urlsplit(self.url or "").hostname or ""
        return host.endswith(".atlassian.net")


# One JQL count per figure; statusCategory is stable across workflows and languages.
_QUERIES = {
    "total": "",
    "open": ' AND statusCategory = "To Do"',
    "in_progress": ' AND statusCategory = "In Progress"',
    "done": " AND statusCategory = Done",
    "created_last_7_days": " AND created >= -7d",
}


async def fetch_metrics(settings: JiraSettings, project: str) -> JiraMetrics:
    if not settings.url:
        return demo_metrics(project)
    base = settings.url.rstrip("/")
    auth, headers = auth_and_headers(settings)
    cloud = settings.uses_cloud_api()
    counts: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=settings.timeout_s, headers=headers, auth=auth) as http:
        for figure, clause in _QUERIES.items():
            jql = f'project = "{project}"{clause}'
            try:
                if cloud:
                    response = await http.post(
                        f"{base}/rest/api/3/search/approximate-count", json={"jql": jql}
                    )
                else:
                    response = await http.get(
                        f"{base}/rest/api/2/search", params={"jql": jql, "maxResults": "0"}
                    )
            except httpx.HTTPError as err:
                raise_for_transport("Jira", err)
                raise
            raise_for_backend("Jira", response)
            body = response.json()
            counts[figure] = int(body["count"] if cloud else body["total"])
    return JiraMetrics(project=project, source=base, **counts)


def auth_and_headers(settings: JiraSettings) -> tuple[httpx.BasicAuth | None, dict[str, str]]:
    """Basic auth with an e-mail and token (Cloud), else a bearer token (Server/DC)."""
    headers = {"Accept": "application/json"}
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if token and settings.email:
        return httpx.BasicAuth(settings.email, token), headers
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return None, headers


def demo_metrics(project: str) -> JiraMetrics:
    """Stable made-up figures per project key, so demos and tests repeat."""
    seed = hashlib.sha256(project.encode()).digest()
    open_, in_progress, done = 3 + seed[0] % 40, 1 + seed[1] % 15, 10 + seed[2] % 200
    return JiraMetrics(
        project=project,
        total=open_ + in_progress + done,
        open=open_,
        in_progress=in_progress,
        done=done,
        created_last_7_days=seed[3] % 12,
        source=DEMO_SOURCE,
    )
