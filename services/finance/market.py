"""Stock quote backends: a Finnhub-compatible market-data HTTP API, or demo data.

``MARKET_DATA_URL`` (and ``MARKET_DATA_API_KEY``) selects the HTTP backend,
which calls ``GET {url}/quote?symbol=TICKER`` and reads ``c`` (current price),
``dp`` (change in percent) and ``t`` (quote time, Unix seconds). With no URL
the demo backend answers, and says so in ``source``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.exceptions import ApplicationError

from meshkit.toolkit.http import raise_for_backend, raise_for_transport
from services.finance.contract import StockPrice

DEMO_SOURCE = "demo data (set MARKET_DATA_URL for real quotes)"


class MarketDataSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKET_DATA_", extra="ignore")

    url: str | None = None
    """Base URL of the market-data API; unset means demo data."""
    api_key: SecretStr | None = None
    """API key, sent in the X-Finnhub-Token header."""
    currency: str = "USD"
    """Currency the API quotes in."""
    timeout_s: float = 10.0
    """Timeout of one HTTP request."""


async def fetch_quote(settings: MarketDataSettings, ticker: str) -> StockPrice:
    if not settings.url:
        return demo_quote(ticker)
    base = settings.url.rstrip("/")
    headers = {"Accept": "application/json"}
    if settings.api_key:
        headers["X-Finnhub-Token"] = settings.api_key.get_secret_value()
    async with httpx.AsyncClient(timeout=settings.timeout_s, headers=headers) as http:
        try:
            response = await http.get(f"{base}/quote", params={"symbol": ticker})
        except httpx.HTTPError as err:
            raise_for_transport("Market data", err)
            raise
    raise_for_backend("Market data", response)
    body = response.json()
    price = float(body.get("c") or 0)
    if price <= 0:
        # The API answers an unknown symbol with an all-zero quote.
        raise ApplicationError(
            f"no quote for ticker {ticker}: the market-data API does not know it",
            type="UnknownTicker",
            non_retryable=True,
        )
    quoted_at = datetime.fromtimestamp(int(body.get("t") or 0), tz=UTC)
    change = body.get("dp")
    return StockPrice(
        ticker=ticker,
        price=round(price, 4),
        currency=settings.currency,
        change_percent=None if change is None else round(float(change), 2),
        as_of=quoted_at.isoformat(),
        source=base,
    )


def demo_quote(ticker: str) -> StockPrice:
    """A stable made-up quote per ticker, so demos and tests repeat."""
    seed = hashlib.sha256(ticker.encode()).digest()
    cents = 1_000 + int.from_bytes(seed[:3], "big") % 49_000
    change = (seed[3] - 128) / 40
    return StockPrice(
        ticker=ticker,
        price=cents / 100,
        currency="USD",
        change_percent=round(change, 2),
        as_of=datetime(2026, 1, 2, 21, 0, tzinfo=UTC).isoformat(),
        source=DEMO_SOURCE,
    )
