"""Query parameters read strictly, for every view: ASCII digits only, bounded, one value per
name, and an error that names the parameter for anything odd, so no query string is a 500.
An empty value counts as absent; unknown parameters are ignored."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from flask import Request

from feedsvc.errors import NotFoundError
from feedsvc.errors import PageNotFoundError
from feedsvc.errors import QueryParameterError

MAX_VALUE_CHARS = 1000
MAX_PAGE = 10**9  # beyond any store; also keeps LIMIT/OFFSET inside a 64-bit integer
_DIGITS = re.compile(r"[0-9]+")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown(value: str) -> str:
    """A value as quoted in an error message: short, so a 100 kB value is not echoed back."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


def text_param(request: Request, name: str) -> str | None:
    """The one value of `name`, or None when absent or empty. Repeating it with different
    values is a 400 (which one did the client mean?); repeating the same value is harmless."""
    values = [v for v in request.args.getlist(name) if v != ""]
    if not values:
        return None
    if any(v != values[0] for v in values[1:]):
        raise QueryParameterError(name, "given more than once with different values")
    value = values[0]
    if len(value) > MAX_VALUE_CHARS:
        raise QueryParameterError(name, f"longer than {MAX_VALUE_CHARS} characters")
    return value


def page_param(request: Request, name: str = "page") -> int:
    """A page number, 1 when absent; anything else than 1..MAX_PAGE names no page (404)."""
    return page_value(text_param(request, name), name)


def page_value(text: str | None, name: str = "page") -> int:
    """A page number given as text (a query value or a path segment such as /page/2/)."""
    if text is None:
        return 1
    if not _DIGITS.fullmatch(text):
        raise PageNotFoundError(f"{name}: must be a whole number from 1, got {shown(text)}")
    if len(text) > len(str(MAX_PAGE)) or int(text) > MAX_PAGE:
        raise PageNotFoundError(f"{name}: no page {shown(text)}")
    page = int(text)
    if page < 1:
        raise PageNotFoundError(f"{name}: no page {page}; pages start at 1")
    return page


def date_param(request: Request, name: str, tz: ZoneInfo) -> tuple[str, dt.datetime] | None:
    """A YYYY-MM-DD date as the start of that day in `tz` (with its text), or None."""
    text = text_param(request, name)
    if text is None:
        return None
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        day = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise PageNotFoundError(f"{name}: must be a date YYYY-MM-DD, got {shown(text)}") from None
    start = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    try:
        start.astimezone(dt.timezone.utc)
    except OverflowError:  # 0001-01-01 east of UTC (or 9999-12-31 west) does not fit: clamp
        start = (dt.datetime.min if day.year == dt.MINYEAR else dt.datetime.max).replace(
            tzinfo=dt.timezone.utc)
    return text, start


def slug_param(request: Request, name: str) -> str | None:
    """A category or tag slug given as a query value; one no slug can be is a 404 at once."""
    text = text_param(request, name)
    if text is not None and not is_plausible_slug(text):
        raise NotFoundError(f"{name}: no {name} {shown(text)}")
    return text


def is_plausible_slug(text: str) -> bool:
    """Slugs never hold control characters (PostgreSQL refuses NUL in a query outright)."""
    return 0 < len(text) <= MAX_VALUE_CHARS and _CONTROL.search(text) is None
