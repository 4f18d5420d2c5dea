"""Return on investment with annually compounded interest."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from services.finance.contract import RoiRequest, RoiResult

_CENT = Decimal("0.01")
# Significant digits of the computation. The largest accepted request (1e15 at
# 1000% for 200 years) is about 2e223; the default 28 digits cannot hold its cents.
_PRECISION = 250


def compound(request: RoiRequest) -> RoiResult:
    """``principal * (1 + rate/100) ** years``, rounded half-up to cents.

    Decimal keeps the cents exact for whole years; fractional years go through
    float power, whose error is far below a cent at these magnitudes.
    """
    with localcontext(prec=_PRECISION):
        principal = Decimal(str(request.principal))
        growth = Decimal(1) + Decimal(str(request.annual_rate)) / 100
        years = request.years
        if float(years).is_integer():
            factor = growth ** int(years)
        else:
            factor = Decimal(repr(float(growth) ** years))
        final = (principal * factor).quantize(_CENT, rounding=ROUND_HALF_UP)
        profit = (final - principal).quantize(_CENT, rounding=ROUND_HALF_UP)
        roi = (profit / principal * 100).quantize(_CENT, rounding=ROUND_HALF_UP)
    return RoiResult(
        principal=request.principal,
        annual_rate=request.annual_rate,
        years=request.years,
        final_value=float(final),
        profit=float(profit),
        roi_percent=float(roi),
    )
