"""ROI arithmetic, and the Nexus handlers' input validation (no Temporal needed)."""

from __future__ import annotations

import math

import nexusrpc
import pytest

from services.finance.contract import RoiRequest
from services.finance.handler import validate_roi, validate_ticker
from services.finance.roi import compound
from services.it.handler import validate_project


def roi(principal: float, annual_rate: float, years: float) -> RoiRequest:
    # model_construct skips the contract's own checks (finite numbers), as a
    # caller that does not use the contract module would: the handler must
    # still refuse what it cannot compute.
    return RoiRequest.model_construct(principal=principal, annual_rate=annual_rate, years=years)


def assert_bad_request(err: pytest.ExceptionInfo[nexusrpc.HandlerError]) -> None:
    assert err.value.type == nexusrpc.HandlerErrorType.BAD_REQUEST
    assert err.value.retryable is False


# --- compound ---------------------------------------------------------------------------


def test_ten_thousand_at_five_percent_for_ten_years() -> None:
    result = compound(roi(10_000, 5, 10))

    # 10000 * 1.05**10 = 16288.946267...
    assert result.final_value == 16288.95
    assert result.profit == 6288.95
    assert result.roi_percent == 62.89
    assert (result.principal, result.annual_rate, result.years) == (10_000, 5, 10)


@pytest.mark.parametrize(
    ("principal", "rate", "years", "final_value", "profit", "roi_percent"),
    [
        # 1500 * 1.043**6 = 1931.0659...
        (1500, 4.3, 6, 1931.07, 431.07, 28.74),
        # Half a year: 1000 * sqrt(1.1) = 1048.8088...
        (1000, 10, 0.5, 1048.81, 48.81, 4.88),
        # A year and a half: 2500 * 1.12 * sqrt(1.12) = 2963.2414...
        (2500, 12, 1.5, 2963.24, 463.24, 18.53),
        # A loss: 1000 * 0.9**2 = 810
        (1000, -10, 2, 810.00, -190.00, -19.00),
        # No interest at all
        (1000, 0, 5, 1000.00, 0.00, 0.00),
        # 100 * 1.00005 = 100.005 exactly, which rounds half up to 100.01
        (100, 0.005, 1, 100.01, 0.01, 0.01),
    ],
)
def test_compound_interest_matches_hand_checked_figures(
    principal: float,
    rate: float,
    years: float,
    final_value: float,
    profit: float,
    roi_percent: float,
) -> None:
    result = compound(roi(principal, rate, years))

    assert result.final_value == final_value
    assert result.profit == profit
    assert result.roi_percent == roi_percent


def test_profit_is_final_value_minus_principal_to_the_cent() -> None:
    result = compound(roi(12_345.67, 3.21, 17))

    assert round(result.final_value - result.principal, 2) == result.profit


@pytest.mark.parametrize(
    ("principal", "rate", "years"),
    [(1e15, 1000, 200), (1, 1000, 200), (1e15, 1000, 199.5), (1000, 100, 100), (1000, -99.99, 200)],
)
def test_the_most_extreme_accepted_requests_still_have_a_finite_answer(
    principal: float, rate: float, years: float
) -> None:
    result = compound(validate_roi(roi(principal, rate, years)))

    assert math.isfinite(result.final_value)
    assert math.isfinite(result.roi_percent)
    assert result.final_value >= 0


# --- validate_roi -----------------------------------------------------------------------


def test_a_reasonable_roi_request_passes_validation_unchanged() -> None:
    request = roi(10_000, 5, 10)

    assert validate_roi(request) is request


@pytest.mark.parametrize(
    ("principal", "rate", "years"),
    [
        pytest.param(0, 5, 10, id="zero principal"),
        pytest.param(-100, 5, 10, id="negative principal"),
        pytest.param(1e16, 5, 10, id="principal above 1e15"),
        pytest.param(math.nan, 5, 10, id="NaN principal"),
        pytest.param(math.inf, 5, 10, id="infinite principal"),
        pytest.param(1000, math.nan, 10, id="NaN rate"),
        pytest.param(1000, -math.inf, 10, id="minus infinite rate"),
        pytest.param(1000, 5, math.inf, id="infinite years"),
        pytest.param(1000, -100, 10, id="rate of minus 100 percent"),
        pytest.param(1000, -150, 10, id="rate below minus 100 percent"),
        pytest.param(1000, 1000.01, 10, id="rate above 1000 percent"),
        pytest.param(1000, 5, 0, id="zero years"),
        pytest.param(1000, 5, -1, id="negative years"),
        pytest.param(1000, 5, 200.5, id="more than 200 years"),
    ],
)
def test_unreasonable_roi_request_is_a_bad_request(
    principal: float, rate: float, years: float
) -> None:
    with pytest.raises(nexusrpc.HandlerError) as err:
        validate_roi(roi(principal, rate, years))

    assert_bad_request(err)


def test_roi_bounds_themselves_are_accepted() -> None:
    validate_roi(roi(1e15, 1000, 200))
    validate_roi(roi(0.01, -99.99, 0.01))


def test_bad_roi_request_says_which_field_is_wrong() -> None:
    with pytest.raises(nexusrpc.HandlerError, match="years must be greater than 0"):
        validate_roi(roi(1000, 5, 0))
    with pytest.raises(nexusrpc.HandlerError, match="annual_rate is a percentage"):
        validate_roi(roi(1000, -100, 5))
    with pytest.raises(nexusrpc.HandlerError, match="principal must be greater than 0"):
        validate_roi(roi(-1, 5, 5))


# --- validate_ticker --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "symbol"),
    [
        ("AAPL", "AAPL"),
        ("aapl", "AAPL"),
        ("$aapl", "AAPL"),
        ("  msft ", "MSFT"),
        ("F", "F"),
        ("brk.b", "BRK.B"),
        ("GOOGL", "GOOGL"),
    ],
)
def test_ticker_is_normalised_to_capital_letters(given: str, symbol: str) -> None:
    assert validate_ticker(given) == symbol


@pytest.mark.parametrize(
    "ticker",
    ["123", "TOOLONG", "", "   ", "AAPL;DROP", "AA PL", "$", "BRK.", "BRK.BBB", "ÄPFEL", "A1"],
)
def test_malformed_ticker_is_a_bad_request(ticker: str) -> None:
    with pytest.raises(nexusrpc.HandlerError, match="invalid ticker") as err:
        validate_ticker(ticker)

    assert_bad_request(err)


# --- validate_project -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("OPS", "OPS"),
        ("ops", "OPS"),
        (" infra ", "INFRA"),
        ("OPS2", "OPS2"),
        ("ABCDEFGHIJ", "ABCDEFGHIJ"),
    ],
)
def test_project_key_is_normalised_to_capital_letters(given: str, key: str) -> None:
    assert validate_project(given) == key


@pytest.mark.parametrize(
    "project",
    ["1OPS", "A", "OPS-1", "", "  ", "ABCDEFGHIJK", "OPS ALL", 'OPS" OR project = "HR'],
)
def test_malformed_project_key_is_a_bad_request(project: str) -> None:
    with pytest.raises(nexusrpc.HandlerError, match="invalid Jira project key") as err:
        validate_project(project)

    assert_bad_request(err)
