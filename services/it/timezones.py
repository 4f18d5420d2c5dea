"""Time zone names for the time server IT publishes: a city as people say it,
read as the IANA zone the server wants.

The offline model reads "What time is it in Tokyo?" as ``timezone="Tokyo"``;
the server takes only IANA keys (``Asia/Tokyo``). IT's handler turns a city
into the zone named after it before the server sees the call, so no caller
needs to know the zone database. A name that is already a key, or that names
no zone's city, is passed on as it is, and the server answers for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any
from zoneinfo import available_timezones


@cache
def _by_city() -> dict[str, str]:
    cities: dict[str, list[str]] = {}
    for key in available_timezones():
        area, _, city = key.rpartition("/")
        if area and not area.startswith("Etc"):
            cities.setdefault(city.casefold(), []).append(key)
    # A city named by two zones (rare: old aliases) is ambiguous: left to the server.
    return {city: keys[0] for city, keys in cities.items() if len(keys) == 1}


def zone(name: str) -> str:
    """The IANA key for ``name``: itself when it is one, else the zone named
    after the city (``Tokyo`` or ``new york``), else ``name`` unchanged."""
    text = name.strip()
    if text in available_timezones():
        return text
    return _by_city().get("_".join(text.split()).casefold(), text)


def zones_in(*fields: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An argument adapter turning the named arguments into IANA keys."""

    def adapt(arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            key: zone(value) if key in fields and isinstance(value, str) else value
            for key, value in arguments.items()
        }

    return adapt
