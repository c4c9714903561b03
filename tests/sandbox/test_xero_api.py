"""The sandbox's Accounting API: auth and tenant checks, Accept, where/order, If-Modified-Since, changes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.clock import Clock
from sandbox.xero import (
    AU_TENANT_ID,
    DEMO_EMAIL,
    NZ_TENANT_ID,
    SINGLE_EMAIL,
    UK_TENANT_ID,
    XeroSandbox,
    stable_id,
)

ACCOUNTS = "/api.xro/2.0/Accounts"
SALES_NZ = stable_id(NZ_TENANT_ID, "account", "200")


def headers(token: str, tenant: str = NZ_TENANT_ID) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "xero-tenant-id": tenant, "Accept": "application/json"}


@pytest.fixture
def token(xero: XeroSandbox) -> str:
    return str(xero.issue_tokens(DEMO_EMAIL)["access_token"])


def _ms(value: str) -> datetime:
    m = re.fullmatch(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/", value)
    assert m, value
    return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)


async def test_access_tokens_expire_after_thirty_minutes(
    xero_clock: Clock, xero_http: httpx.AsyncClient, token: str
) -> None:
    assert (await xero_http.get(ACCOUNTS, headers=headers(token))).status_code == 200
    xero_clock.advance(29 * 60)
    assert (await xero_http.get(ACCOUNTS, headers=headers(token))).status_code == 200
    xero_clock.advance(61)
    response = await xero_http.get(ACCOUNTS, headers=headers(token))
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"Type", "Title", "Status", "Detail", "Instance", "Extensions"}
    assert body["Type"] is None
    assert body["Title"] == "Unauthorized"
    assert body["Status"] == 401
    assert re.fullmatch(r"TokenExpired: token expired at \d\d/\d\d/\d{4} \d\d:\d\d:\d\d", body["Detail"])
    assert body["Instance"] == response.headers["Xero-Correlation-Id"]


async def test_expire_access_tokens_switch(xero: XeroSandbox, xero_http: httpx.AsyncClient, token: str) -> None:
    xero.expire_access_tokens()
    response = await xero_http.get(ACCOUNTS, headers=headers(token))
    assert response.status_code == 401
    assert response.json()["Detail"].startswith("TokenExpired")


async def test_unknown_or_missing_bearer_is_unauthorized(xero_http: httpx.AsyncClient) -> None:
    for auth in ("Bearer nonsense", ""):
        response = await xero_http.get(ACCOUNTS, headers={**headers("x"), "Authorization": auth})
        assert response.status_code == 401
        assert response.json()["Detail"] == "AuthenticationUnsuccessful"


async def test_revoked_user_tokens(xero: XeroSandbox, xero_http: httpx.AsyncClient, token: str) -> None:
    refresh_token = xero.issue_tokens(DEMO_EMAIL)["refresh_token"]
    xero.revoke_user_tokens(DEMO_EMAIL)
    assert (await xero_http.get(ACCOUNTS, headers=headers(token))).status_code == 401
    response = await xero_http.post("/connect/token", auth=("sandbox-xero-client", "sandbox-xero-secret"),
                                    data={"grant_type": "refresh_token", "refresh_token": refresh_token})
    assert response.json() == {"error": "invalid_grant"}


async def test_tenant_must_be_connected(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    single = str(xero.issue_tokens(SINGLE_EMAIL)["access_token"])
    expected = {"Type": None, "Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"}
    for tenant in (AU_TENANT_ID, "", "not-a-guid", stable_id("nowhere")):
        response = await xero_http.get(ACCOUNTS, headers=headers(single, tenant))
        assert response.status_code == 403, tenant
        body = response.json()
        assert {k: body[k] for k in expected} == expected
        assert body["Instance"] == response.headers["Xero-Correlation-Id"]
    missing = {k: v for k, v in headers(single).items() if k != "xero-tenant-id"}
    assert (await xero_http.get(ACCOUNTS, headers=missing)).status_code == 403
    assert (await xero_http.get(ACCOUNTS, headers=headers(single, NZ_TENANT_ID.upper()))).status_code == 200


async def test_settings_scope_is_required(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    token = str(xero.issue_tokens(SINGLE_EMAIL, scope="offline_access accounting.contacts.read")["access_token"])
    response = await xero_http.get(ACCOUNTS, headers=headers(token))
    assert response.status_code == 401
    assert response.json()["Detail"] == "AuthorizationUnsuccessful"


async def test_json_only_when_asked(xero_http: httpx.AsyncClient, token: str) -> None:
    for accept in (None, "*/*", "application/xml"):
        h = headers(token)
        if accept is None:
            del h["Accept"]
        else:
            h["Accept"] = accept
        assert (await xero_http.get(ACCOUNTS, headers=h)).status_code == 406, accept


async def test_paths_are_case_insensitive_and_unknown_ids_are_404(xero_http: httpx.AsyncClient, token: str) -> None:
    response = await xero_http.get(f"/api.xro/2.0/accounts/{SALES_NZ.upper()}", headers=headers(token))
    assert response.status_code == 200
    assert [a["Name"] for a in response.json()["Accounts"]] == ["Sales"]
    tax = await xero_http.get("/api.xro/2.0/TaxRates/OUTPUT2", headers=headers(token))
    assert [r["Name"] for r in tax.json()["TaxRates"]] == ["15% GST on Income"]
    for path in (f"{ACCOUNTS}/{stable_id('nope')}", "/api.xro/2.0/TaxRates/NOPE",
                 f"/api.xro/2.0/BrandingThemes/{stable_id('nope')}", "/api.xro/2.0/Invoicez"):
        missing = await xero_http.get(path, headers=headers(token))
        assert missing.status_code == 404, path
        assert missing.text == "The resource you're looking for cannot be found"


async def test_where_and_order(xero_http: httpx.AsyncClient, token: str) -> None:
    async def names(field: str, path: str = ACCOUNTS, **params: str) -> list[str]:
        response = await xero_http.get(path, headers=headers(token), params=params)
        assert response.status_code == 200, response.text
        key = "Accounts" if path == ACCOUNTS else "TaxRates"
        return [item.get(field) for item in response.json()[key]]

    banks = await names("Type", where='Status=="ACTIVE" AND Type=="BANK"')
    assert banks
    assert set(banks) == {"BANK"}
    assert len(await names("Status", where='Status=="ARCHIVED"')) == 3
    either = await names("Class", where='Class=="EQUITY" OR Class=="LIABILITY"')
    assert set(either) == {"EQUITY", "LIABILITY"}
    assert await names("Code", where='Type=="BANK" && Status=="ACTIVE"', order="Code DESC") == [
        "093", "092", "091", "090", None]
    codes = await names("Code", where='Class=="REVENUE"', order="Code ASC")
    assert codes == sorted(codes)
    by_name = await names("Name", where='Class=="EXPENSE"', order="Name")
    assert by_name == sorted(by_name, key=str.casefold)
    assert await names("Name", where='Name.Contains("Travel")') == ["Travel - National", "Travel - International"]
    rates = await names("TaxType", path="/api.xro/2.0/TaxRates", where='Status=="ACTIVE"', order="EffectiveRate DESC")
    assert rates[0] == "TAX001"
    assert "TAX002" not in rates
    bad = await xero_http.get(ACCOUNTS, headers=headers(token), params={"where": 'Name > "A"'})
    assert bad.status_code == 400
    assert bad.json()["Type"] == "QueryParseException"
    bad_order = await xero_http.get(ACCOUNTS, headers=headers(token), params={"order": "Colour DESC"})
    assert bad_order.status_code == 400


async def test_if_modified_since(xero: XeroSandbox, xero_http: httpx.AsyncClient, token: str) -> None:
    everything = (await xero_http.get(ACCOUNTS, headers=headers(token))).json()["Accounts"]
    newest = max(_ms(a["UpdatedDateUTC"]) for a in everything)
    since = newest.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    recent = (await xero_http.get(ACCOUNTS, headers={**headers(token), "If-Modified-Since": since})).json()
    assert [a["UpdatedDateUTC"] for a in recent["Accounts"]] == [max(a["UpdatedDateUTC"] for a in everything)]
    xero.rename_account(NZ_TENANT_ID, SALES_NZ, "Sales - Retail")
    new = xero.add_account(NZ_TENANT_ID, Code="215", Name="Sales - Wholesale", Type="REVENUE", TaxType="OUTPUT2")
    xero.rename_account(NZ_TENANT_ID, stable_id(NZ_TENANT_ID, "account", "260"), "Sundry Revenue", touch=False)
    later = (newest + timedelta(seconds=1)).isoformat()
    changed = (await xero_http.get(ACCOUNTS, headers={**headers(token), "If-Modified-Since": later})).json()
    assert {a["AccountID"] for a in changed["Accounts"]} == {SALES_NZ, new}
    http_date = "Mon, 01 Jan 2035 00:00:00 GMT"
    none = (await xero_http.get(ACCOUNTS, headers={**headers(token), "If-Modified-Since": http_date}))
    assert none.status_code == 200
    assert none.json()["Accounts"] == []
    # TaxRates have no If-Modified-Since: the header is ignored.
    rates = await xero_http.get("/api.xro/2.0/TaxRates", headers={**headers(token), "If-Modified-Since": http_date})
    assert len(rates.json()["TaxRates"]) == 8


async def test_control_changes_show_in_the_api(xero: XeroSandbox, xero_http: httpx.AsyncClient, token: str) -> None:
    xero.archive_account(AU_TENANT_ID, stable_id(AU_TENANT_ID, "account", "200"))
    xero.delete_account(AU_TENANT_ID, stable_id(AU_TENANT_ID, "account", "260"))
    tax_type = xero.add_tax_rate(AU_TENANT_ID, Name="GST on Tours", ReportTaxType="OUTPUT",
                                 TaxComponents=[{"Name": "GST", "Rate": "10"}])
    theme = xero.add_branding_theme(AU_TENANT_ID, Name="Receipts")
    h = headers(token, AU_TENANT_ID)
    accounts = {a["Code"]: a for a in (await xero_http.get(ACCOUNTS, headers=h)).json()["Accounts"] if "Code" in a}
    assert accounts["200"]["Status"] == "ARCHIVED"
    assert "260" not in accounts
    assert tax_type == "TAX004"
    rates = (await xero_http.get("/api.xro/2.0/TaxRates", headers=h)).json()["TaxRates"]
    assert any(r["TaxType"] == "TAX004" and r["Name"] == "GST on Tours" for r in rates)
    themes = (await xero_http.get("/api.xro/2.0/BrandingThemes", headers=h)).json()["BrandingThemes"]
    assert themes[-1]["BrandingThemeID"] == theme
    assert themes[-1]["SortOrder"] == 3
    with pytest.raises(ValueError, match="unique Name"):
        xero.add_account(UK_TENANT_ID, Code="999", Name="sales", Type="SALES")
    with pytest.raises(ValueError, match="TaxType"):
        xero.add_account(UK_TENANT_ID, Code="999", Name="Other", Type="SALES", TaxType="OUTPUT9")
    org = (await xero_http.get("/api.xro/2.0/Organisation", headers=h)).json()["Organisations"]
    assert org[0]["OrganisationID"] == AU_TENANT_ID
    assert org[0]["Timezone"] == "AUSEASTERNSTANDARDTIME"


async def test_writes_are_refused(xero_http: httpx.AsyncClient, token: str) -> None:
    response = await xero_http.put(ACCOUNTS, headers=headers(token), json={"Code": "1", "Name": "x", "Type": "SALES"})
    assert response.status_code == 405
