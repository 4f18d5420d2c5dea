"""Weather backends: Open-Meteo over HTTP, or offline demo data.

``OPEN_METEO_URL`` (forecast API base, e.g. https://api.open-meteo.com) and
``OPEN_METEO_GEOCODING_URL`` (e.g. https://geocoding-api.open-meteo.com)
select the HTTP backend; with neither set the demo backend answers, and says
so in ``source``. Setting only ``OPEN_METEO_URL`` uses it for both.
"""

from __future__ import annotations

import hashlib

import httpx
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.exceptions import ApplicationError

from meshkit.toolkit.hints import ToolHints
from meshkit.toolkit.http import raise_for_backend, raise_for_transport

DEMO_SOURCE = "demo data (set OPEN_METEO_URL for real weather)"

# WMO weather interpretation codes, as documented by Open-Meteo.
_WMO = {
    0: "clear sky", 1: "mainly clear", 2: "partly cloudy", 3: "overcast",
    45: "fog", 48: "rime fog", 51: "light drizzle", 53: "drizzle", 55: "dense drizzle",
    61: "light rain", 63: "rain", 65: "heavy rain", 71: "light snow", 73: "snow",
    75: "heavy snow", 80: "rain showers", 81: "rain showers", 82: "violent rain showers",
    95: "thunderstorm", 96: "thunderstorm with hail", 99: "thunderstorm with hail",
}  # fmt: skip


class WeatherSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPEN_METEO_", extra="ignore")

    url: str | None = None
    """Forecast API base URL; unset means demo data."""
    geocoding_url: str | None = None
    """Geocoding API base URL; defaults to ``url``."""
    timeout_s: float = 10.0


class WeatherRequest(BaseModel):
    """Current weather in a city."""

    city: str = Field(description="City name, e.g. Paris or San Francisco.")


class Weather(BaseModel):
    city: str = Field(description="Resolved place name.")
    country: str | None = Field(default=None, description="Country of the place.")
    temperature_c: float = Field(description="Air temperature at 2 m, in °C.")
    wind_speed_kmh: float = Field(description="Wind speed at 10 m, in km/h.")
    conditions: str = Field(description="Sky and precipitation, in words.")
    source: str = Field(description="Where the figures come from: an API URL, or 'demo data'.")


HINTS = ToolHints(
    examples=[
        "What is the weather in {city}?",
        "Weather in {city}",
        "Temperature in {city}",
        "Forecast for {city}",
    ],
    reply=[
        "Weather in {city}: {conditions}, {temperature_c} °C, wind {wind_speed_kmh} km/h "
        "(source: {source})"
    ],
)
"""How the offline model recognises a question for the weather tool and words its answer."""


async def current_weather(settings: WeatherSettings, city: str) -> Weather:
    if not settings.url:
        return demo_weather(city)
    forecast_base = settings.url.rstrip("/")
    geo_base = (settings.geocoding_url or settings.url).rstrip("/")
    async with httpx.AsyncClient(timeout=settings.timeout_s) as http:
        try:
            geo = await http.get(
                f"{geo_base}/v1/search",
                params={"name": city, "count": "1", "language": "en", "format": "json"},
            )
            raise_for_backend("Open-Meteo geocoding", geo)
            places = geo.json().get("results") or []
            if not places:
                raise ApplicationError(
                    f"no place called {city!r} was found",
                    type="UnknownCity",
                    non_retryable=True,
                )
            place = places[0]
            forecast = await http.get(
                f"{forecast_base}/v1/forecast",
                params={
                    "latitude": str(place["latitude"]),
                    "longitude": str(place["longitude"]),
                    "current": "temperature_2m,wind_speed_10m,weather_code",
                },
            )
        except httpx.HTTPError as err:
            raise_for_transport("Open-Meteo", err)
            raise
    raise_for_backend("Open-Meteo", forecast)
    current = forecast.json()["current"]
    return Weather(
        city=place["name"],
        country=place.get("country"),
        temperature_c=float(current["temperature_2m"]),
        wind_speed_kmh=float(current["wind_speed_10m"]),
        conditions=_WMO.get(int(current.get("weather_code", -1)), "unknown conditions"),
        source=forecast_base,
    )


def demo_weather(city: str) -> Weather:
    """Stable made-up weather per city, so demos and tests repeat."""
    name = " ".join(part.capitalize() for part in city.split())
    seed = hashlib.sha256(name.lower().encode()).digest()
    codes = sorted(_WMO)
    return Weather(
        city=name,
        temperature_c=round(-5 + seed[0] / 255 * 35, 1),
        wind_speed_kmh=round(seed[1] / 255 * 40, 1),
        conditions=_WMO[codes[seed[2] % len(codes)]],
        source=DEMO_SOURCE,
    )
