"""What Xero's bytes look like: `\\/Date(ms+0000)\\/` dates, 4-dp decimals, envelopes and error bodies.

Xero serialises with .NET, which writes Microsoft JSON dates with the slash escaped and decimals with
their scale (`15.0000`). Python's json module can do neither, so values that need it are encoded as
private placeholder strings and rewritten in the output text.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from aiohttp import web

JSON_TYPE = "application/json; charset=utf-8"
FOUR_DP = Decimal("0.0001")

# A NUL character can never come out of the data itself unescaped, so it marks the placeholders.
_DATE_MARK = "\x00D:"
_NUM_MARK = "\x00N:"
_PLACEHOLDER = re.compile(r'"\\u0000([DN]):([^"]*)"')


@dataclass(frozen=True)
class MsDate:
    """A Microsoft JSON date; `offset` adds the `+0000` that Xero writes on most entity timestamps."""

    at: datetime
    offset: bool = True

    def text(self) -> str:
        ms = round(self.at.timestamp() * 1000)
        return f"/Date({ms}{'+0000' if self.offset else ''})/"


def ms_date(at: datetime, *, offset: bool = True) -> str:
    return MsDate(at, offset).text()


def _default(value: Any) -> Any:
    if isinstance(value, MsDate):
        return _DATE_MARK + value.text()[len("/Date(") : -len(")/")]
    if isinstance(value, Decimal):
        return _NUM_MARK + format(value.quantize(FOUR_DP), "f")
    if isinstance(value, datetime):
        return _DATE_MARK + MsDate(value).text()[len("/Date(") : -len(")/")]
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _restore(match: re.Match[str]) -> str:
    kind, body = match.group(1), match.group(2)
    if kind == "D":
        return f'"\\/Date({body})\\/"'
    return body


def dumps(value: Any) -> str:
    """JSON text as Xero writes it: datetimes become escaped MS dates, Decimals keep 4 places."""
    text = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    return _PLACEHOLDER.sub(_restore, text)


def correlation_id() -> str:
    return str(uuid.uuid4())


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=dumps(body), content_type="application/json",
                        charset="utf-8", headers=headers)


def envelope(key: str, items: list[dict[str, Any]], *, cid: str, provider: str, now: datetime) -> dict[str, Any]:
    """The Accounting API's response wrapper; `Id` repeats the Xero-Correlation-Id header."""
    return {"Id": cid, "Status": "OK", "ProviderName": provider,
            "DateTimeUTC": MsDate(now, offset=False), key: items}


def problem(status: int, detail: str, cid: str) -> dict[str, Any]:
    """The problem body Xero's API gateway answers 401 and 403 with."""
    title = HTTPStatus(status).phrase
    return {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": cid,
            "Extensions": {}}


def query_error(message: str) -> dict[str, Any]:
    """A `where`/`order` the API cannot parse: 400 with ErrorNumber 16."""
    return {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}


def token_expired_detail(expired_at: float) -> str:
    """`TokenExpired: token expired at 04/09/2023 05:16:59` (US date order, UTC)."""
    return "TokenExpired: token expired at " + datetime.fromtimestamp(expired_at, UTC).strftime(
        "%m/%d/%Y %H:%M:%S")


def connection_time(at: datetime) -> str:
    """Connection timestamps: seven fraction digits and no zone designator (`2020-03-18T21:20:07.7179250`)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
