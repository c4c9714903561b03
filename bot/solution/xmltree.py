"""Small helpers to write the XML of a Dataverse solution the way Dataverse exports it.

Exports write user-visible text as `<x description="..." languagecode="1033" />` lists, booleans as
0/1, and indent with two spaces; the files carry no XML declaration (as a real export's
`solution.xml`/`customizations.xml`, see specs/dataverse/examples/).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

LANGUAGE = 1033  # English: our labels are English only
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

Child = ET.Element | tuple[str, object] | None
# Exports write an empty *value* as `<Format></Format>` and an empty *container* as `<LookupTypes />`;
# ElementTree writes both alike, so empty values carry this marker until they are serialized.
_EMPTY = "\ue000empty\ue000"


def el(
    tag: str, text: object = None, /, attrs: dict[str, str] | None = None, children: Iterable[Child] = ()
) -> ET.Element:
    """An element; children are Elements or `(tag, text)` pairs; None children are skipped."""
    node = ET.Element(tag, attrs or {})
    if text is not None:
        node.text = flag(text) if isinstance(text, bool) else str(text) or _EMPTY
    for child in children:
        if child is None:
            continue
        if isinstance(child, ET.Element):
            node.append(child)
        else:
            node.append(el(child[0], child[1]))
    return node


def flag(value: bool) -> str:
    return "1" if value else "0"


def labels(container: str, item: str, text: str) -> ET.Element:
    """`<displaynames><displayname description="..." languagecode="1033" /></displaynames>`."""
    return el(container, children=[el(item, attrs={"description": text, "languagecode": str(LANGUAGE)})])


def descriptions(text: str) -> ET.Element:
    return labels("Descriptions", "Description", text)


def number(value: float | int) -> str:
    """Numbers as exports write them: `-1000`, not `-1000.0`."""
    as_float = float(value)
    return str(int(as_float)) if as_float.is_integer() else repr(as_float)


def render(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    text = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return text.replace(f">{_EMPTY}<", "><").encode("utf-8")
