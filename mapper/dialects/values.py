"""The value rules every backend shares: what a column accepts, checked before any SQL is sent.

Each function returns a bind processor for one column type. A value a backend would store
differently from the others (or silently change) is either brought to the one form every
backend keeps (``-0.0`` to ``0.0``, a decimal rounded to its scale) or refused with
``DataError`` naming the column, the value and the fix. The flush, query conditions and
set-based updates all bind through these, so the rule is the same for each of them.
"""

from __future__ import annotations

import datetime as _dt
import json
import numbers
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from .. import errors
from ..types import ColumnType, Numeric

__all__ = [
    "float_bind",
    "numeric_bind",
    "numeric_quantizer",
    "naive_datetime_bind",
    "aware_datetime_bind",
    "time_bind",
    "json_bind",
]

Processor = Callable[[Any], Any]

_INF = float("inf")
_NINF = float("-inf")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def refuse(type_: ColumnType, value: Any, why: str) -> errors.DataError:
    """The error for a value ``type_``'s column does not take (nothing has been sent)."""
    where = type_.column or "a column"
    msg = f"{where} ({type_!r}) cannot store {_shown(value)}: {why}"
    return errors.DataError(msg)


# -- Float ----------------------------------------------------------------------------------------


def float_bind(type_: ColumnType) -> Processor:
    """Floats as every backend keeps them: NaN and infinities refused, ``-0.0`` sent as ``0.0``.

    MySQL and MariaDB cannot store NaN or an infinity and SQLite stores NaN as NULL, so no
    backend is given one. SQLite and MySQL drop the sign of zero, so none is sent a signed one.
    Other numbers are sent as floats; anything else goes to the driver as it is.
    """

    why = "NaN and infinities are refused on every backend (MySQL and MariaDB cannot store them); use None for a missing value"

    def bind(v: Any) -> Any:
        if type(v) is not float:
            return other(v)
        if v != v or v == _INF or v == _NINF:
            raise refuse(type_, v, why)
        return v or 0.0  # -0.0 is falsy: sent as 0.0

    def other(v: Any) -> Any:
        # Ints, Decimals, Fractions and float subclasses are sent as floats; anything else
        # (a numeric string) goes to the driver as it is.
        if isinstance(v, bool) or not isinstance(v, (numbers.Real, Decimal)):
            return v
        try:
            f = float(v)
        except OverflowError:
            raise refuse(type_, v, "it is too large for a double-precision float") from None
        except ValueError:  # a signalling Decimal NaN
            raise refuse(type_, v, why) from None
        if f != f or f == _INF or f == _NINF:
            raise refuse(type_, v, why)
        return f or 0.0

    return bind


# -- Numeric --------------------------------------------------------------------------------------


def _context(type_: Numeric) -> Context:
    # Enough digits for any value the column holds (plus one that rounding may carry), so
    # quantize never fails on precision alone (the default context keeps 28).
    return Context(prec=type_.digits[0] + 2, rounding=ROUND_HALF_UP)


def numeric_bind(type_: Numeric, as_text: bool) -> Processor:
    """Decimals rounded to the column's scale, half away from zero, before they are sent.

    PostgreSQL and MySQL round so on store; rounding first means SQLite holds the same value.
    NaN, infinities and values with more digits before the point than the precision leaves
    room for are refused. ``-0`` is sent as ``0``. Ints, floats and numeric strings are read as
    decimals (a float by its shortest repr). ``as_text`` sends the plain decimal text.
    """
    precision, scale = type_.digits
    quantum = Decimal(1).scaleb(-scale)
    room = precision - scale  # digits allowed before the point
    ctx = _context(type_)

    def too_wide(d: Decimal) -> errors.DataError:
        why = (
            f"the column holds at most {max(room, 0)} digits before the point (precision "
            f"{precision}, scale {scale}, rounded half away from zero); declare a larger precision"
        )
        return refuse(type_, d, why)

    def bind(v: Any) -> Any:
        if type(v) is Decimal:
            d = v
        elif v is None:
            return None
        elif isinstance(v, (int, float, str)) and not isinstance(v, bool):
            try:
                d = Decimal(str(v))
            except InvalidOperation:
                raise refuse(type_, v, "it is not a decimal number; pass a decimal.Decimal") from None
        elif isinstance(v, Decimal):
            d = v
        else:
            raise refuse(type_, v, "it is not a decimal number; pass a decimal.Decimal")
        if not d.is_finite():
            raise refuse(type_, v, "NaN and infinities are refused on every backend; use None for a missing value")
        if not d.is_zero() and d.adjusted() >= room:
            raise too_wide(d)
        q = d.quantize(quantum, context=ctx)
        if q.is_zero():
            q = q.copy_abs()
        elif q.adjusted() >= room:  # rounding carried into one more digit: 999.995 -> 1000.00
            raise too_wide(d)
        return format(q, "f") if as_text else q

    return bind


def numeric_quantizer(type_: Numeric) -> Callable[[Decimal], Decimal]:
    """Round a decimal read back to the column's scale (half away from zero); NaN and infinities
    (only from rows written by other means) are returned as they are."""
    quantum = Decimal(1).scaleb(-type_.digits[1])
    ctx = _context(type_)

    def quantize(d: Decimal) -> Decimal:
        if not d.is_finite():
            return d
        try:
            return d.quantize(quantum, context=ctx)
        except InvalidOperation:  # wider than the column: written by other means, keep it
            return d

    return quantize


# -- DateTime and Time ----------------------------------------------------------------------------


def _aware(v: Any) -> bool:
    return getattr(v, "tzinfo", None) is not None


def naive_datetime_bind(type_: ColumnType, convert: Processor | None = None) -> Processor:
    """Naive datetimes only: an aware one is refused, then ``convert`` (if any) is applied.

    The backends disagree on an aware value in a column without a zone (SQLite keeps the
    offset, PostgreSQL converts to the session's zone, MySQL drops it), and a naive column
    does not say which zone its values are in, so mapper does not guess.
    """
    why = (
        "the column is DateTime() without a time zone; pass a naive datetime "
        "(value.astimezone(datetime.timezone.utc).replace(tzinfo=None) for UTC) "
        "or declare the column DateTime(timezone=True)"
    )

    def bind(v: Any) -> Any:
        if _aware(v):
            raise refuse(type_, v, why)
        return v if convert is None or v is None else convert(v)

    return bind


def aware_datetime_bind(v: Any) -> Any:
    """A naive datetime for a ``DateTime(timezone=True)`` column is taken as UTC, as on every backend."""
    if isinstance(v, _dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=_dt.timezone.utc)
    return v


def time_bind(type_: ColumnType, convert: Processor | None = None) -> Processor:
    """Naive times only: no backend keeps a time's offset (SQLite keeps it as text, the servers
    drop it), so a time with tzinfo is refused; then ``convert`` (if any) is applied."""
    why = "Time columns keep no offset on any backend; pass a naive time, value.replace(tzinfo=None), in the zone you mean"

    def bind(v: Any) -> Any:
        if _aware(v):
            raise refuse(type_, v, why)
        return v if convert is None or v is None else convert(v)

    return bind


# -- Json -----------------------------------------------------------------------------------------


def json_bind(type_: ColumnType, float_fraction: bool) -> Processor:
    """JSON text for a document, the same on every backend.

    NaN and infinities have no JSON form (SQLite would store the invalid text ``NaN``, the
    servers refuse it), nor do sets, bytes and other objects: all are refused here. ``-0.0`` is
    written ``0.0`` (PostgreSQL's JSONB drops the sign). With ``float_fraction`` (JSONB, which
    keeps numbers as decimals and prints ``1e+16`` back as ``10000000000000000``), a float
    written with an exponent is written as plain digits with a fraction instead, so that it
    reads back as a float.
    """

    def bind(v: Any) -> Any:
        if v is None:
            return None
        try:
            text = json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            why = f"it has no JSON form ({exc}); NaN and infinities are refused on every backend, use None or a string"
            raise refuse(type_, v, why) from None
        # Only text that may hold such a float is looked at again (the common case is not).
        if "-0.0" in text or (float_fraction and "e+" in text):
            text = _rewrite_floats(v, float_fraction)
        return text

    return bind


def _rewrite_floats(doc: Any, float_fraction: bool) -> str:
    """JSON text with ``-0.0`` as ``0.0`` and, if asked, exponent floats as digits with a fraction."""
    marks: dict[str, str] = {}
    nonce = uuid.uuid4().hex

    def walk(v: Any) -> Any:
        if isinstance(v, float):
            if v == 0:
                return 0.0
            text = repr(v)
            if float_fraction and "e+" in text:
                # A string placeholder, replaced by the digits once the text is built.
                mark = f"{nonce}:{len(marks)}"
                marks[f'"{mark}"'] = f"{Decimal(text):f}.0"
                return mark
            return v
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    text = json.dumps(walk(doc), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for mark, digits in marks.items():
        text = text.replace(mark, digits)
    return text
