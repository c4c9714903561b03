"""The Dataverse client's pure helpers: alternate-key URLs, OData-EntityId parsing, status mapping."""

from __future__ import annotations

import httpx
import pytest

from bot.errors import (
    AuthError,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TransientProviderError,
)
from bot.sync.dataverse import PreconditionFailed, classify
from bot.sync.dataverse_batch import entity_id, key_segment, odata_string
from bot.sync.tables import CHART_OF_ACCOUNTS, CONNECTOR, TAX_TYPE

CONNECTOR_ID = "5f0c8f7e-1c1e-4d7b-9d4e-2b0c5b1f0a11"


def test_key_segment_names_lookups_by_their_value_property_and_quotes_strings() -> None:
    segment = key_segment(
        CHART_OF_ACCOUNTS, {"xdc_connectorid": CONNECTOR_ID.upper(), "xdc_xeroaccountid": "abc-1"}
    )
    assert segment == f"(_xdc_connectorid_value={CONNECTOR_ID},xdc_xeroaccountid='abc-1')"


def test_key_segment_doubles_quotes_and_percent_encodes_unsafe_characters() -> None:
    assert odata_string("O'Brien") == "'O''Brien'"
    segment = key_segment(TAX_TYPE, {"xdc_connectorid": CONNECTOR_ID, "xdc_xerotaxtype": "A B/'x'#"})
    assert segment.endswith("xdc_xerotaxtype='A%20B%2F''x''%23')")


def test_key_segment_refuses_a_lookup_that_is_not_a_guid() -> None:
    with pytest.raises(ValueError, match="GUID"):
        key_segment(TAX_TYPE, {"xdc_connectorid": "1) or (1", "xdc_xerotaxtype": "A"})
    with pytest.raises(KeyError):
        key_segment(CONNECTOR, {"nope": "x"})


def test_entity_id_reads_the_guid_at_the_end_of_the_header() -> None:
    url = f"https://o.api.crm.dynamics.com/api/data/v9.2/xdc_connectors({CONNECTOR_ID.upper()})"
    assert entity_id({"odata-entityid": url}) == CONNECTOR_ID
    assert entity_id(httpx.Headers({"OData-EntityId": url})) == CONNECTOR_ID
    assert entity_id({}) is None


def _response(status: int, body: dict[str, object] | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        json=body,
        headers=headers,
        request=httpx.Request("GET", "https://o.api.crm.dynamics.com/api/data/v9.2/WhoAmI"),
    )


def _err(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


def test_classify_maps_each_status_once() -> None:
    assert classify(_response(200, {})) is None
    assert classify(_response(204)) is None

    unauthorised = classify(_response(401, _err("", "token expired")))
    assert isinstance(unauthorised, AuthError)
    assert unauthorised.reconnect_required

    denied = classify(
        _response(403, _err("0x80040220", "Principal user is missing prvCreatexdc_taxtype privilege"))
    )
    assert isinstance(denied, PermissionDenied)
    assert "prvCreatexdc_taxtype" in str(denied)
    assert denied.code == "0x80040220"

    missing = classify(_response(404, _err("0x80040217", "xdc_taxtype With Id = x Does Not Exist")))
    assert isinstance(missing, NotFound)
    assert missing.code == "0x80040217"

    conflict = classify(_response(412, _err("0x80060892", "A record with matching key values already exists.")))
    assert isinstance(conflict, PreconditionFailed)
    assert conflict.status == 412

    throttled = classify(_response(429, _err("0x80072322", "Number of requests exceeded"), {"Retry-After": "7"}))
    assert isinstance(throttled, RateLimited)
    assert throttled.retry_after == 7
    assert throttled.problem == "requests"

    assert isinstance(classify(_response(503, _err("", "unavailable"))), TransientProviderError)

    bad = classify(_response(400, _err("0x80048d19", "Error identified in Payload")))
    assert type(bad) is ProviderError
    assert bad.status == 400
    assert bad.code == "0x80048d19"
    assert "Error identified in Payload" in str(bad)


def test_entity_id_ignores_a_key_form_url() -> None:
    url = f"https://o/api/data/v9.2/xdc_taxtypes(_xdc_connectorid_value={CONNECTOR_ID},xdc_xerotaxtype='A')"
    assert entity_id({"odata-entityid": url}) is None
