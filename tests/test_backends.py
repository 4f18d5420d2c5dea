"""The teams' HTTP backends against fake APIs served on 127.0.0.1.

Each backend must map the API's answer to its contract model, and turn a
failure into the right Temporal error: non-retryable when retrying cannot
help (bad credentials, unknown item), retryable for an outage.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from temporalio.exceptions import ApplicationError
from werkzeug import Response

from orchestrator import weather
from orchestrator.weather import WeatherSettings, current_weather
from services.finance import market
from services.finance.market import MarketDataSettings, fetch_quote
from services.it import jira
from services.it.jira import JiraSettings, fetch_metrics

SEARCH = "/rest/api/2/search"

JQL = {
    "total": 'project = "OPS"',
    "open": 'project = "OPS" AND statusCategory = "To Do"',
    "in_progress": 'project = "OPS" AND statusCategory = "In Progress"',
    "done": 'project = "OPS" AND statusCategory = Done',
    "created_last_7_days": 'project = "OPS" AND created >= -7d',
}
FIGURES = {"total": 42, "open": 10, "in_progress": 7, "done": 25, "created_last_7_days": 4}


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


def jira_settings(httpserver: HTTPServer, **overrides: object) -> JiraSettings:
    values: dict[str, object] = {
        "url": httpserver.url_for("/"),
        "email": "bot@example.com",
        "api_token": "s3cret",
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return JiraSettings(**values)  # type: ignore[arg-type]


def serve_jira_counts(httpserver: HTTPServer) -> None:
    for figure, jql in JQL.items():
        httpserver.expect_request(
            SEARCH, method="GET", query_string={"jql": jql, "maxResults": "0"}
        ).respond_with_json({"startAt": 0, "maxResults": 0, "total": FIGURES[figure], "issues": []})


async def expect_application_error(awaitable: object) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await awaitable  # type: ignore[misc]
    return caught.value


# --- Jira -------------------------------------------------------------------------------


async def test_jira_figures_come_from_one_count_query_per_status_category(
    httpserver: HTTPServer,
) -> None:
    serve_jira_counts(httpserver)

    metrics = await fetch_metrics(jira_settings(httpserver), "OPS")

    assert metrics.project == "OPS"
    assert metrics.total == 42
    assert metrics.open == 10
    assert metrics.in_progress == 7
    assert metrics.done == 25
    assert metrics.created_last_7_days == 4
    assert metrics.source == httpserver.url_for("/").rstrip("/")
    assert len(httpserver.log) == 5
    httpserver.check_assertions()


async def test_jira_asks_only_for_counts_never_for_issues(httpserver: HTTPServer) -> None:
    serve_jira_counts(httpserver)

    await fetch_metrics(jira_settings(httpserver), "OPS")

    asked = [request.args.to_dict() for request, _ in httpserver.log]
    assert all(args["maxResults"] == "0" for args in asked)
    assert [args["jql"] for args in asked] == list(JQL.values())


async def test_jira_uses_basic_auth_when_an_email_and_token_are_set(
    httpserver: HTTPServer,
) -> None:
    serve_jira_counts(httpserver)

    await fetch_metrics(jira_settings(httpserver, email="bot@example.com"), "OPS")

    expected = "Basic " + base64.b64encode(b"bot@example.com:s3cret").decode()
    assert {request.headers.get("Authorization") for request, _ in httpserver.log} == {expected}


async def test_jira_uses_a_bearer_token_when_no_email_is_set(httpserver: HTTPServer) -> None:
    serve_jira_counts(httpserver)

    await fetch_metrics(jira_settings(httpserver, email=None), "OPS")

    assert {request.headers.get("Authorization") for request, _ in httpserver.log} == {
        "Bearer s3cret"
    }


async def test_jira_sends_no_credentials_when_no_token_is_set(httpserver: HTTPServer) -> None:
    serve_jira_counts(httpserver)

    await fetch_metrics(jira_settings(httpserver, email=None, api_token=None), "OPS")

    assert {request.headers.get("Authorization") for request, _ in httpserver.log} == {None}


async def test_rejected_jira_credentials_are_a_non_retryable_error(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(SEARCH).respond_with_json(
        {"errorMessages": ["You are not authenticated."]}, status=401
    )

    err = await expect_application_error(fetch_metrics(jira_settings(httpserver), "OPS"))

    assert err.type == "BackendUnauthorized"
    assert err.non_retryable is True
    assert "401" in err.message


async def test_unknown_jira_project_is_a_non_retryable_error(httpserver: HTTPServer) -> None:
    refusal = "The value 'NOPE' does not exist for the field 'project'."
    httpserver.expect_request(SEARCH).respond_with_json(
        {"errorMessages": [refusal], "errors": {}}, status=400
    )

    err = await expect_application_error(fetch_metrics(jira_settings(httpserver), "NOPE"))

    assert err.type == "BackendRefused"
    assert err.non_retryable is True
    assert refusal in err.message


async def test_jira_outage_is_a_retryable_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data("maintenance", status=503)

    err = await expect_application_error(fetch_metrics(jira_settings(httpserver), "OPS"))

    assert err.type == "BackendUnavailable"
    assert err.non_retryable is False
    assert "503" in err.message


async def test_unreachable_jira_is_a_retryable_error(closed_port_url: str) -> None:
    settings = JiraSettings(url=closed_port_url, api_token="s3cret", timeout_s=5.0)  # type: ignore[arg-type]

    err = await expect_application_error(fetch_metrics(settings, "OPS"))

    assert err.type == "BackendUnavailable"
    assert err.non_retryable is False
    assert "could not be reached" in err.message


async def test_jira_without_a_url_answers_with_stable_demo_data() -> None:
    settings = JiraSettings(url=None)

    first = await fetch_metrics(settings, "OPS")
    again = await fetch_metrics(settings, "OPS")

    assert first == again
    assert first.source == jira.DEMO_SOURCE
    assert "demo data" in first.source
    assert first.total == first.open + first.in_progress + first.done
    assert await fetch_metrics(settings, "INFRA") != first


# --- Market data ------------------------------------------------------------------------


def market_settings(httpserver: HTTPServer) -> MarketDataSettings:
    return MarketDataSettings(url=httpserver.url_for("/"), api_key="k3y", timeout_s=5.0)  # type: ignore[arg-type]


async def test_stock_quote_maps_price_change_and_time(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/quote",
        method="GET",
        query_string={"symbol": "AAPL"},
        headers={"X-Finnhub-Token": "k3y"},
    ).respond_with_json(
        {
            "c": 189.984,
            "d": 1.2,
            "dp": 0.6372,
            "h": 190.1,
            "l": 187.5,
            "pc": 188.78,
            "t": 1700000000,
        }
    )

    quote = await fetch_quote(market_settings(httpserver), "AAPL")

    assert quote.ticker == "AAPL"
    assert quote.price == 189.984
    assert quote.currency == "USD"
    assert quote.change_percent == 0.64
    assert quote.as_of == "2023-11-14T22:13:20+00:00"
    assert quote.source == httpserver.url_for("/").rstrip("/")
    httpserver.check_assertions()


async def test_stock_quote_without_a_change_has_no_change_percent(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/quote").respond_with_json({"c": 10.5, "t": 1700000000})

    quote = await fetch_quote(market_settings(httpserver), "AAPL")

    assert quote.price == 10.5
    assert quote.change_percent is None


async def test_unknown_ticker_is_a_non_retryable_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/quote", query_string={"symbol": "ZZZZZ"}).respond_with_json(
        {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
    )

    err = await expect_application_error(fetch_quote(market_settings(httpserver), "ZZZZZ"))

    assert err.type == "UnknownTicker"
    assert err.non_retryable is True
    assert "ZZZZZ" in err.message


async def test_market_data_rate_limit_is_a_retryable_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/quote").respond_with_json(
        {"error": "API limit reached"}, status=429
    )

    err = await expect_application_error(fetch_quote(market_settings(httpserver), "AAPL"))

    assert err.type == "BackendUnavailable"
    assert err.non_retryable is False
    assert "429" in err.message


async def test_rejected_market_data_key_is_a_non_retryable_error(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/quote").respond_with_json({"error": "Invalid API key"}, status=401)

    err = await expect_application_error(fetch_quote(market_settings(httpserver), "AAPL"))

    assert err.type == "BackendUnauthorized"
    assert err.non_retryable is True


async def test_unreachable_market_data_is_a_retryable_error(closed_port_url: str) -> None:
    settings = MarketDataSettings(url=closed_port_url, timeout_s=5.0)

    err = await expect_application_error(fetch_quote(settings, "AAPL"))

    assert err.type == "BackendUnavailable"
    assert err.non_retryable is False


async def test_market_data_without_a_url_answers_with_stable_labelled_demo_quotes() -> None:
    settings = MarketDataSettings(url=None)

    first = await fetch_quote(settings, "AAPL")
    again = await fetch_quote(settings, "AAPL")

    assert first == again
    assert first.ticker == "AAPL"
    assert first.source == market.DEMO_SOURCE
    assert "demo data" in first.source
    assert first.price > 0
    assert (await fetch_quote(settings, "MSFT")).price != first.price


# --- Weather ----------------------------------------------------------------------------

PARIS = {
    "id": 2988507,
    "name": "Paris",
    "latitude": 48.85341,
    "longitude": 2.3488,
    "country": "France",
}


def weather_settings(httpserver: HTTPServer) -> WeatherSettings:
    return WeatherSettings(
        url=httpserver.url_for("/"), geocoding_url=httpserver.url_for("/geo"), timeout_s=5.0
    )


async def test_weather_geocodes_the_city_then_reads_current_conditions(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_ordered_request(
        "/geo/v1/search",
        method="GET",
        query_string={"name": "Paris", "count": "1", "language": "en", "format": "json"},
    ).respond_with_json({"results": [PARIS], "generationtime_ms": 0.4})
    httpserver.expect_ordered_request(
        "/v1/forecast",
        method="GET",
        query_string={
            "latitude": "48.85341",
            "longitude": "2.3488",
            "current": "temperature_2m,wind_speed_10m,weather_code",
        },
    ).respond_with_json(
        {
            "latitude": 48.86,
            "longitude": 2.35,
            "current": {
                "time": "2026-01-02T12:00",
                "temperature_2m": 7.4,
                "wind_speed_10m": 13.2,
                "weather_code": 3,
            },
        }
    )

    report = await current_weather(weather_settings(httpserver), "Paris")

    assert report.city == "Paris"
    assert report.country == "France"
    assert report.temperature_c == 7.4
    assert report.wind_speed_kmh == 13.2
    assert report.conditions == "overcast"
    assert report.source == httpserver.url_for("/").rstrip("/")
    httpserver.check_assertions()


async def test_weather_uses_the_forecast_url_for_geocoding_when_none_is_set(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/v1/search").respond_with_json({"results": [PARIS]})
    httpserver.expect_request("/v1/forecast").respond_with_json(
        {"current": {"temperature_2m": 1, "wind_speed_10m": 2, "weather_code": 1234}}
    )

    report = await current_weather(WeatherSettings(url=httpserver.url_for("/")), "Paris")

    assert report.conditions == "unknown conditions"
    assert [request.path for request, _ in httpserver.log] == ["/v1/search", "/v1/forecast"]


async def test_unknown_city_is_a_non_retryable_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/geo/v1/search").respond_with_json({"generationtime_ms": 0.3})

    err = await expect_application_error(current_weather(weather_settings(httpserver), "Atlantis"))

    assert err.type == "UnknownCity"
    assert err.non_retryable is True
    assert "Atlantis" in err.message
    assert len(httpserver.log) == 1


async def test_weather_forecast_outage_is_a_retryable_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/geo/v1/search").respond_with_json({"results": [PARIS]})
    httpserver.expect_request("/v1/forecast").respond_with_data("busy", status=502)

    err = await expect_application_error(current_weather(weather_settings(httpserver), "Paris"))

    assert err.type == "BackendUnavailable"
    assert err.non_retryable is False


async def test_unreachable_weather_api_is_a_retryable_error(closed_port_url: str) -> None:
    settings = WeatherSettings(url=closed_port_url, timeout_s=5.0)

    err = await expect_application_error(current_weather(settings, "Paris"))

    assert err.type == "BackendUnavailable"
    assert err.non_retryable is False


async def test_weather_without_a_url_answers_with_stable_labelled_demo_data() -> None:
    settings = WeatherSettings(url=None, geocoding_url=None)

    first = await current_weather(settings, "san francisco")
    again = await current_weather(settings, "San  Francisco")

    assert first == again
    assert first.city == "San Francisco"
    assert first.source == weather.DEMO_SOURCE
    assert "demo data" in first.source
    assert first.conditions in weather._WMO.values()


async def test_jira_cloud_counts_with_the_approximate_count_api(httpserver: HTTPServer) -> None:
    def count(request):  # type: ignore[no-untyped-def]
        jql = request.get_json()["jql"]
        figure = next(name for name, query in JQL.items() if query == jql)
        return Response(json.dumps({"count": FIGURES[figure]}), content_type="application/json")

    httpserver.expect_request(
        "/rest/api/3/search/approximate-count", method="POST"
    ).respond_with_handler(count)

    metrics = await fetch_metrics(jira_settings(httpserver, api="cloud"), "OPS")

    assert (metrics.total, metrics.open, metrics.in_progress, metrics.done) == (42, 10, 7, 25)
    assert metrics.created_last_7_days == 4
    assert len(httpserver.log) == 5


def test_jira_api_is_chosen_from_the_site_unless_set() -> None:
    assert JiraSettings(url="https://acme.atlassian.net").uses_cloud_api()
    assert not JiraSettings(url="https://jira.acme.internal").uses_cloud_api()
    assert not JiraSettings(url="https://acme.atlassian.net", api="server").uses_cloud_api()
    assert JiraSettings(url="https://jira.acme.internal", api="cloud").uses_cloud_api()
