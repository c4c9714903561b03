"""The sandboxes' control APIs, as the e2e tests use them: what Xero holds, what reached Dataverse."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tests.e2e.stack import Product

CONNECTOR_SET = "xdc_connectors"
ACCOUNT_SET = "xdc_chartofaccountses"
TAX_SET = "xdc_taxtypes"
THEME_SET = "xdc_brandingthemes"


class Sandboxes:
    def __init__(self, product: Product) -> None:
        self._product = product

    def _get(self, url: str) -> Any:
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return response.json()

    def _post(self, url: str, body: dict[str, Any]) -> None:
        httpx.post(url, json=body, timeout=10).raise_for_status()

    # -- Xero ----------------------------------------------------------------------------------------

    def xero(self, tenant_id: str, what: str) -> list[dict[str, Any]]:
        """`what`: accounts, tax-rates or branding-themes, as a Xero client parses them."""
        return list(self._get(f"{self._product.xero_url}/_sandbox/xero/tenants/{quote(tenant_id)}/{what}"))

    def xero_latency(self, seconds: float) -> None:
        """Every Xero API call waits this long (wall clock): makes a run last long enough to watch."""
        self._post(f"{self._product.xero_url}/_sandbox/xero/latency", {"seconds": seconds})

    # -- Dataverse -----------------------------------------------------------------------------------

    def import_timing(self, seconds: float) -> None:
        """How long a solution import runs in the Dataverse sandbox (sandbox clock)."""
        self._post(f"{self._product.dataverse_url}/_sandbox/dataverse/import-timing", {"import_seconds": seconds})

    def solution_versions(self, env: str) -> list[str]:
        return [str(r["version"]) for r in self.rows(env, "solutions") if r.get("uniquename") == "XeroDynamicsConnector"]

    def rows(self, env: str, entity_set: str) -> list[dict[str, Any]]:
        data = self._get(
            f"{self._product.dataverse_url}/_sandbox/dataverse/rows/{quote(env)}/{quote(entity_set)}"
        )
        return list(data["value"])

    def connector(self, env: str, name: str) -> dict[str, Any]:
        """The Connector row our bot wrote for the connection called `name`."""
        rows = [r for r in self.rows(env, CONNECTOR_SET) if r.get("xdc_name") == name]
        assert len(rows) == 1, f"expected one Connector row called {name!r} in {env}, found {len(rows)}"
        return rows[0]

    def synced(self, env: str, connector_id: str, entity_set: str, key: str) -> set[str]:
        """The Xero ids in one of our tables for one connector."""
        return {
            str(row[key])
            for row in self.rows(env, entity_set)
            if row.get("_xdc_connectorid_value") == connector_id and row.get(key)
        }

    def assert_synced(self, env: str, connection_name: str, tenant_id: str) -> None:
        """Dynamics holds the organisation's accounts, tax rates and branding themes, each by its Xero id."""
        connector_id = str(self.connector(env, connection_name)["xdc_connectorid"])
        for what, entity_set, xero_key, column in (
            ("accounts", ACCOUNT_SET, "AccountID", "xdc_xeroaccountid"),
            ("tax-rates", TAX_SET, "TaxType", "xdc_xerotaxtype"),
            ("branding-themes", THEME_SET, "BrandingThemeID", "xdc_xerobrandingthemeid"),
        ):
            # All that Xero's API lists, deleted tax rates too: they are synced with their status.
            in_xero = {str(row[xero_key]) for row in self.xero(tenant_id, what)}
            in_dynamics = self.synced(env, connector_id, entity_set, column)
            assert in_xero, f"the Xero sandbox has no {what} for {tenant_id}"
            assert in_dynamics == in_xero, (
                f"{what} of {tenant_id}: missing in Dynamics {sorted(in_xero - in_dynamics)[:5]}, "
                f"not in Xero {sorted(in_dynamics - in_xero)[:5]}"
            )
