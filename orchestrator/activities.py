"""The orchestrator's local tools, run as Temporal activities."""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from meshkit.toolkit.hints import ToolHints
from orchestrator.calculator import CalculatorError, evaluate
from orchestrator.weather import Weather, WeatherRequest, WeatherSettings, current_weather


class CalculatorRequest(BaseModel):
    """Evaluate an arithmetic expression exactly: + - * / // % ^, parentheses, sqrt, abs, round, min, max, log, exp, sin, cos, tan, floor, ceil, pi, e."""

    expression: str = Field(description="The expression, e.g. (15 * 23) / 4 or sqrt(2).")


class CalculatorResult(BaseModel):
    expression: str = Field(description="The expression as given.")
    value: float | int = Field(description="Its value.")


CALCULATOR_HINTS = ToolHints(reply=["{expression} = {value} (calculator)"])
"""How the offline model words the calculator's answer. It needs no examples:
it sends any arithmetic it finds to a tool that takes just an expression."""


class LocalTools:
    """Activities for the local tools, holding the worker's backend settings."""

    def __init__(self, weather: WeatherSettings) -> None:
        self._weather = weather

    @activity.defn(name="calculator")
    async def calculator(self, request: CalculatorRequest) -> CalculatorResult:
        try:
            value = evaluate(request.expression)
        except CalculatorError as err:
            # Bad arithmetic never gets better on retry.
            raise ApplicationError(str(err), type="BadExpression", non_retryable=True) from None
        return CalculatorResult(expression=request.expression, value=value)

    @activity.defn(name="weather")
    async def weather(self, request: WeatherRequest) -> Weather:
        city = request.city.strip()
        if not city or len(city) > 100:
            raise ApplicationError(
                "city must be a place name of 1-100 characters",
                type="BadCity",
                non_retryable=True,
            )
        return await current_weather(self._weather, city)
