"""Each region's tax rates as Xero ships them, plus a few custom (TAX00n) ones.

Rows are (Name, TaxType, ReportTaxType, components, Status, applies-to override or None); a component is
(Name, Rate, IsCompound). Applies-to lists the CanApplyTo* flags that are true (A, E, X, L, R for
Assets, Equity, eXpenses, Liabilities, Revenue); None derives them from the ReportTaxType.
"""

from __future__ import annotations

from typing import Any

Component = tuple[str, str, bool]
TaxRow = tuple[str, str, str, list[Component], str, str | None]

NZ_TAX_RATES: list[TaxRow] = [
    ("15% GST on Expenses", "INPUT2", "INPUT", [("GST", "15", False)], "ACTIVE", "AEXL"),
    ("15% GST on Income", "OUTPUT2", "OUTPUT", [("GST", "15", False)], "ACTIVE", "AELR"),
    ("GST on Imports", "GSTONIMPORTS", "GSTONIMPORTS", [("GST", "0", False)], "ACTIVE", "L"),
    ("No GST", "NONE", "NONE", [("GST", "0", False)], "ACTIVE", "AEXLR"),
    ("Zero Rated", "ZERORATED", "OUTPUT", [("GST", "0", False)], "ACTIVE", "LR"),
    # Custom: a local levy with GST charged on top of it (compound component).
    ("Harbour Levy & GST", "TAX001", "OUTPUT", [("Harbour Levy", "2.5", False), ("GST", "15", True)], "ACTIVE", None),
    # NZ GST was 12.5% until 1 October 2010; old organisations keep these rates archived.
    ("12.5% GST on Income (old rate)", "TAX002", "OUTPUT", [("GST", "12.5", False)], "ARCHIVED", None),
    ("12.5% GST on Expenses (old rate)", "TAX003", "INPUT", [("GST", "12.5", False)], "ARCHIVED", None),
]

AU_TAX_RATES: list[TaxRow] = [
    ("BAS Excluded", "BASEXCLUDED", "BASEXCLUDED", [("GST", "0", False)], "ACTIVE", "AEXLR"),
    ("GST Free Capital", "EXEMPTCAPITAL", "EXEMPTCAPITAL", [("GST", "0", False)], "ACTIVE", "A"),
    ("GST Free Expenses", "EXEMPTEXPENSES", "EXEMPTEXPENSES", [("GST", "0", False)], "ACTIVE", "AEXL"),
    ("GST Free Exports", "EXEMPTEXPORT", "EXEMPTEXPORT", [("GST", "0", False)], "ACTIVE", "R"),
    ("GST Free Income", "EXEMPTOUTPUT", "EXEMPTOUTPUT", [("GST", "0", False)], "ACTIVE", "AELR"),
    ("GST on Capital", "CAPEXINPUT", "CAPEXINPUT", [("GST", "10", False)], "ACTIVE", "A"),
    ("GST on Capital Imports", "GSTONCAPIMPORTS", "GSTONCAPIMPORTS", [("GST", "0", False)], "ACTIVE", "L"),
    ("GST on Expenses", "INPUT", "INPUT", [("GST", "10", False)], "ACTIVE", "AEXL"),
    ("GST on Imports", "GSTONIMPORTS", "GSTONIMPORTS", [("GST", "0", False)], "ACTIVE", "L"),
    ("GST on Income", "OUTPUT", "OUTPUT", [("GST", "10", False)], "ACTIVE", "AELR"),
    ("Input Taxed", "INPUTTAXED", "INPUTTAXED", [("GST", "0", False)], "ACTIVE", "AEXLR"),
    # Wine equalisation tax: 29% WET, then 10% GST on the price including WET.
    ("GST + WET on Wine Sales", "TAX001", "OUTPUT", [("WET", "29", False), ("GST", "10", True)], "ACTIVE", None),
    ("Luxury Car Tax", "TAX002", "INPUT", [("LCT", "33", False)], "ARCHIVED", None),
    ("GST on Income (superseded)", "TAX003", "OUTPUT", [("GST", "10", False)], "DELETED", None),
]

UK_TAX_RATES: list[TaxRow] = [
    ("20% (VAT on Expenses)", "INPUT2", "INPUT", [("VAT", "20", False)], "ACTIVE", "AEXL"),
    ("20% (VAT on Income)", "OUTPUT2", "OUTPUT", [("VAT", "20", False)], "ACTIVE", "AELR"),
    ("5% (VAT on Expenses)", "RRINPUT", "INPUT", [("VAT", "5", False)], "ACTIVE", "AEXL"),
    ("5% (VAT on Income)", "RROUTPUT", "OUTPUT", [("VAT", "5", False)], "ACTIVE", "AELR"),
    ("Zero Rated Expenses", "ZERORATEDINPUT", "ZERORATEDINPUT", [("VAT", "0", False)], "ACTIVE", "AEXL"),
    ("Zero Rated Income", "ZERORATEDOUTPUT", "ZERORATEDOUTPUT", [("VAT", "0", False)], "ACTIVE", "AELR"),
    ("Exempt Expenses", "EXEMPTINPUT", "EXEMPTINPUT", [("VAT", "0", False)], "ACTIVE", "AEXL"),
    ("Exempt Income", "EXEMPTOUTPUT", "EXEMPTOUTPUT", [("VAT", "0", False)], "ACTIVE", "AELR"),
    ("No VAT", "NONE", "NONE", [("VAT", "0", False)], "ACTIVE", "AEXLR"),
    ("20% (VAT on Capital Purchases)", "CAPEXINPUT2", "CAPEXINPUT", [("VAT", "20", False)], "ACTIVE", "A"),
    ("20% (VAT on Capital Sales)", "CAPEXOUTPUT2", "OUTPUT", [("VAT", "20", False)], "ACTIVE", "A"),
    ("Reverse Charge Expenses (20%)", "REVERSECHARGES", "REVERSECHARGES", [("VAT", "20", False)], "ACTIVE", "AEXL"),
    ("Zero Rated EC Services", "ECZROUTPUTSERVICES", "ECOUTPUTSERVICES", [("VAT", "0", False)], "ACTIVE", "R"),
    ("Zero Rated EC Goods Income", "ECZROUTPUT", "ECOUTPUT", [("VAT", "0", False)], "ARCHIVED", "R"),
    ("20% VAT on EC Acquisitions", "ECACQUISITIONS", "ECACQUISITIONS", [("VAT", "20", False)], "ARCHIVED", "AX"),
    # The standard rate was 17.5% until 4 January 2011.
    ("17.5% (VAT on Income)", "OUTPUT", "OUTPUT", [("VAT", "17.5", False)], "ARCHIVED", "AELR"),
    ("17.5% (VAT on Expenses)", "INPUT", "INPUT", [("VAT", "17.5", False)], "ARCHIVED", "AEXL"),
]

_FLAGS = {"A": "CanApplyToAssets", "E": "CanApplyToEquity", "X": "CanApplyToExpenses",
          "L": "CanApplyToLiabilities", "R": "CanApplyToRevenue"}


def tax_fields(row: TaxRow) -> dict[str, Any]:
    """The fields `resources.build_tax_rate` takes for one row."""
    name, tax_type, report, components, status, applies = row
    fields: dict[str, Any] = {
        "Name": name, "TaxType": tax_type, "ReportTaxType": report, "Status": status,
        "TaxComponents": [{"Name": n, "Rate": r, "IsCompound": c} for n, r, c in components],
    }
    if applies is not None:
        for letter, flag in _FLAGS.items():
            fields[flag] = letter in applies
    return fields
