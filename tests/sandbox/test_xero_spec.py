"""Every kind of body the Xero sandbox sends, checked against Xero's official OpenAPI schemas.

The schemas are made strict before use: objects refuse properties the spec does not name and
`x-is-msdate(-time)` strings must be Microsoft JSON dates, so a misspelt field or a wrong enum value
fails here. Raw texts are checked for Xero's escaped `\\/Date(...)\\/` and 4-dp decimals.
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sandbox.xero import (
    AU_TENANT_ID,
    DEMO_EMAIL,
    NZ_TENANT_ID,
    UK_TENANT_ID,
    XeroSandbox,
)

ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = [Path(os.environ.get("XERO_OPENAPI_DIR", "/nonexistent")), ROOT / "specs" / "xero",
               ROOT / "docs" / "specs" / "xero"]
MS_DATE = r"^/Date\(-?\d+([+-]\d{4})?\)/$"
TENANTS = [NZ_TENANT_ID, AU_TENANT_ID, UK_TENANT_ID]


def _spec_dir() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "xero_accounting.yaml").exists():
            return candidate
    pytest.skip("Xero OpenAPI spec not found (set XERO_OPENAPI_DIR)")


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if isinstance(out.get("properties"), dict):
            out.setdefault("additionalProperties", False)
        if out.get("x-is-msdate-time") or out.get("x-is-msdate"):
            out["pattern"] = MS_DATE
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


class Spec:
    def __init__(self, directory: Path) -> None:
        load = lambda name: yaml.load((directory / name).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: E731
        self.accounting = load("xero_accounting.yaml")
        self.identity = load("xero-identity.yaml")
        strict = {"components": {"schemas": _strict(self.accounting["components"]["schemas"])}}
        loose_identity = {"components": {"schemas": self.identity["components"]["schemas"]}}
        self.registry = Registry().with_resources([
            ("urn:xero:accounting", Resource(strict, DRAFT202012)),
            ("urn:xero:identity", Resource(_strict(loose_identity), DRAFT202012)),
            ("urn:xero:identity-loose", Resource(loose_identity, DRAFT202012)),
        ])

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        checker = FormatChecker(formats=["uuid"])
        return Draft202012Validator(schema, registry=self.registry, format_checker=checker)

    def envelope_schema(self, name: str) -> dict[str, Any]:
        """The spec's list schema plus the envelope fields it leaves out (Id, Status, ProviderName, DateTimeUTC)."""
        return {
            "type": "object",
            "required": ["Id", "Status", "ProviderName", "DateTimeUTC", name],
            "properties": {"Id": {"type": "string", "format": "uuid"}, "Status": {"const": "OK"},
                           "ProviderName": {"type": "string", "minLength": 1},
                           "DateTimeUTC": {"type": "string", "pattern": r"^/Date\(\d+\)/$"},
                           name: {"$ref": f"urn:xero:accounting#/components/schemas/{name}/properties/{name}"}},
            "additionalProperties": False,
        }

    def check(self, schema: dict[str, Any], body: Any) -> None:
        errors = sorted(self.validator(schema).iter_errors(body), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.fixture(scope="session")
def spec() -> Spec:
    return Spec(_spec_dir())


def _api_headers(token: str, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "xero-tenant-id": tenant, "Accept": "application/json"}


def _raw_checks(text: str) -> None:
    assert '"/Date(' not in text, "dates must be written with escaped slashes"
    assert re.search(r'"\\/Date\(\d+\)\\/"', text), "DateTimeUTC must be \\/Date(ms)\\/"


@pytest.mark.parametrize("tenant", TENANTS)
async def test_every_accounting_body_matches_the_spec(
    spec: Spec, xero: XeroSandbox, xero_http: httpx.AsyncClient, tenant: str
) -> None:
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    headers = _api_headers(token, tenant)
    org = xero.org(tenant)
    account_id = next(iter(org.accounts))
    tax_type = next(iter(org.tax_rates))
    theme_id = next(iter(org.themes))
    paths = {
        "/api.xro/2.0/Accounts": "Accounts", f"/api.xro/2.0/Accounts/{account_id}": "Accounts",
        "/api.xro/2.0/TaxRates": "TaxRates", f"/api.xro/2.0/TaxRates/{tax_type}": "TaxRates",
        "/api.xro/2.0/BrandingThemes": "BrandingThemes",
        f"/api.xro/2.0/BrandingThemes/{theme_id}": "BrandingThemes", "/api.xro/2.0/Organisation": "Organisations",
    }
    for path, schema_name in paths.items():
        response = await xero_http.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        _raw_checks(response.text)
        body = response.json()
        spec.check(spec.envelope_schema(schema_name), body)
        assert body["Id"] == response.headers["Xero-Correlation-Id"]
        assert body[schema_name], path
    accounts = (await xero_http.get("/api.xro/2.0/Accounts", headers=headers)).text
    assert re.search(r'"UpdatedDateUTC":"\\/Date\(\d+\+0000\)\\/"', accounts)
    rates = (await xero_http.get("/api.xro/2.0/TaxRates", headers=headers)).text
    assert re.search(r'"EffectiveRate":\d+\.\d{4}[,}]', rates), "rates keep four decimal places"
    assert re.search(r'"Rate":\d+\.\d{4}[,}]', rates)


async def test_error_bodies_match_the_spec(spec: Spec, xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    response = await xero_http.get("/api.xro/2.0/Accounts", params={"where": 'Nope=="x"'},
                                   headers=_api_headers(token, NZ_TENANT_ID))
    assert response.status_code == 400
    spec.check({"$ref": "urn:xero:accounting#/components/schemas/Error"}, response.json())
    assert response.json() == {"ErrorNumber": 16, "Type": "QueryParseException",
                               "Message": "No property or field 'Nope' exists in type 'Account'"}


async def test_identity_bodies_match_the_spec(spec: Spec, xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    tokens = xero.issue_tokens(DEMO_EMAIL)
    # The token response carries `scope` too, which the spec's AccessToken leaves out: check it loosely.
    spec.check({"$ref": "urn:xero:identity-loose#/components/schemas/AccessToken"}, tokens)
    assert set(tokens) == {"id_token", "access_token", "expires_in", "token_type", "refresh_token", "scope"}
    response = await xero_http.get("/connections", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    body = response.json()
    spec.check({"type": "array", "items": {"$ref": "urn:xero:identity#/components/schemas/Connection"}}, body)
    assert len(body) == 3
    for conn in body:
        assert set(conn) == {"id", "authEventId", "tenantId", "tenantType", "tenantName", "createdDateUtc",
                             "updatedDateUtc"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", conn["createdDateUtc"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", conn["updatedDateUtc"])


async def test_a_generated_org_matches_the_spec(spec: Spec, xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    tenant = xero.generate_org("Bench Org (AU)", accounts=1200, country="AU")
    token = xero.issue_tokens(DEMO_EMAIL, tenant_ids=[tenant])["access_token"]
    response = await xero_http.get("/api.xro/2.0/Accounts", headers=_api_headers(token, tenant))
    body = response.json()
    assert len(body["Accounts"]) == 1200
    spec.check(spec.envelope_schema("Accounts"), body)


def test_the_strict_schemas_can_fail(spec: Spec) -> None:
    """The checks above mean something only if a wrong body fails them."""
    with pytest.raises(AssertionError):
        spec.check({"$ref": "urn:xero:accounting#/components/schemas/Account"}, {"AccountId": "x"})
    with pytest.raises(AssertionError):
        spec.check({"$ref": "urn:xero:accounting#/components/schemas/Account"}, {"Type": "CASH"})
    with pytest.raises(AssertionError):
        spec.check({"$ref": "urn:xero:accounting#/components/schemas/Account"}, {"UpdatedDateUTC": "2024-01-01"})
    with pytest.raises(AssertionError):
        spec.check(spec.envelope_schema("TaxRates"), {"Id": "x", "Status": "OK", "TaxRates": []})


@pytest.mark.parametrize("tenant", TENANTS)
def test_seed_data_is_realistic(xero: XeroSandbox, tenant: str) -> None:
    accounts = xero.accounts(tenant)
    rates = xero.tax_rates(tenant)
    themes = xero.branding_themes(tenant)
    org = xero.organisation(tenant)
    assert len(accounts) >= 60
    statuses = {a["Status"] for a in accounts}
    assert statuses == {"ACTIVE", "ARCHIVED"}
    banks = [a for a in accounts if a["Type"] == "BANK"]
    assert len(banks) >= 4
    assert all(b.get("BankAccountType") and b.get("CurrencyCode") for b in banks)
    assert any(b["CurrencyCode"] != org["BaseCurrency"] for b in banks), "a foreign-currency bank account"
    assert any(b["BankAccountType"] == "CREDITCARD" and "Code" not in b for b in banks)
    systems = {a.get("SystemAccount") for a in accounts} - {None}
    assert {"DEBTORS", "CREDITORS", "GST", "RETAINEDEARNINGS", "ROUNDING"} <= systems
    tax_types = {r["TaxType"] for r in rates}
    assert {a["TaxType"] for a in accounts} <= tax_types, "every account's TaxType is a tax rate of its org"
    assert len({a["Code"] for a in accounts if "Code" in a}) == len([a for a in accounts if "Code" in a])
    assert {"ACTIVE", "ARCHIVED"} <= {r["Status"] for r in rates}
    assert 2 <= len(themes) <= 4
    assert next(t["SortOrder"] for t in themes) == 0
    if org["CountryCode"] in ("NZ", "AU"):
        assert all(a.get("ReportingCode") for a in accounts)
        assert any(any(c["IsCompound"] for c in r["TaxComponents"]) for r in rates)


def test_seeded_regions_use_their_real_rates(xero: XeroSandbox) -> None:
    def rate(tenant: str, tax_type: str) -> Decimal:
        return next(r["EffectiveRate"] for r in xero.tax_rates(tenant) if r["TaxType"] == tax_type)

    assert rate(NZ_TENANT_ID, "OUTPUT2") == Decimal("15")
    assert rate(AU_TENANT_ID, "OUTPUT") == Decimal("10")
    assert rate(UK_TENANT_ID, "OUTPUT2") == Decimal("20")
    assert rate(UK_TENANT_ID, "RROUTPUT") == Decimal("5")
    assert rate(UK_TENANT_ID, "ZERORATEDOUTPUT") == Decimal("0")
    # GST charged on top of the 29% wine equalisation tax.
    assert rate(AU_TENANT_ID, "TAX001") == Decimal("41.9")
    timezones = {xero.organisation(t)["Timezone"] for t in TENANTS}
    assert timezones == {"NEWZEALANDSTANDARDTIME", "AUSEASTERNSTANDARDTIME", "GMTSTANDARDTIME"}
    assert json.loads(json.dumps([xero.organisation(t)["BaseCurrency"] for t in TENANTS])) == ["NZD", "AUD", "GBP"]
