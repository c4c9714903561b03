"""Microsoft's CustomizationsSolution.xsd, compiled with lxml after the in-memory workarounds W1-W4
that specs/dataverse/README.md documents (the files themselves stay verbatim)."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

SPECS = Path(__file__).resolve().parents[2] / "specs" / "dataverse"
XS = "http://www.w3.org/2001/XMLSchema"
_NS = {"xs": XS}


def _fixed(name: str) -> bytes:
    """One schema file with W1-W4 applied."""
    text = (SPECS / name).read_text(encoding="utf-8")
    # W1: the docs' bulk http->https edit made the XML Schema namespace unrecognisable.
    text = text.replace("https://www.w3.org/2001/XMLSchema", XS)
    tree = etree.fromstring(text.encode("utf-8"))
    for pattern in tree.iterfind(".//xs:pattern", _NS):
        value = pattern.get("value", "")
        # W2: a .NET look-ahead, not XSD regex syntax.
        value = value.replace("(?![cC][rR][mM]_)", "")
        # W4: XSD patterns are implicitly anchored; ^ and $ would be literal characters.
        if value.startswith("^"):
            value = value[1:]
        if value.endswith("$"):
            value = value[:-1]
        pattern.set("value", value)
    # W3: FormXml's control `parameters` content model is not deterministic (UPA) for libxml2.
    for parameters in tree.iterfind(
        ".//xs:complexType[@name='FormXmlControlType']//xs:element[@name='parameters']", _NS
    ):
        for child in list(parameters):
            parameters.remove(child)
        any_content = etree.SubElement(
            etree.SubElement(etree.SubElement(parameters, f"{{{XS}}}complexType"), f"{{{XS}}}sequence"),
            f"{{{XS}}}any",
        )
        any_content.set("minOccurs", "0")
        any_content.set("maxOccurs", "unbounded")
        any_content.set("processContents", "skip")
    return etree.tostring(tree)


class _SpecsResolver(etree.Resolver):
    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        name = Path(system_url).name
        if (SPECS / name).is_file():
            return self.resolve_string(_fixed(name), context)
        return None


@functools.cache
def customizations_schema() -> etree.XMLSchema:
    parser = etree.XMLParser()
    parser.resolvers.add(_SpecsResolver())
    root = etree.fromstring(
        _fixed("CustomizationsSolution.xsd"), parser, base_url=str(SPECS / "CustomizationsSolution.xsd")
    )
    return etree.XMLSchema(etree.ElementTree(root))


def errors(xml: bytes) -> list[str]:
    """The schema errors of a customizations.xml document (empty when it is valid)."""
    schema = customizations_schema()
    document = etree.fromstring(xml)
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
