"""Text from outside (a browser, Xero, Dynamics, another Teams user) made safe for a markdown message.

Teams reads a message's text and a TextBlock as markdown: a Xero organisation called
"[Pay here](https://evil.example)" would become a link in the chat, a name starting with "#" a heading.
`md_outside` keeps such text literal: markdown's special characters are escaped (as `cards.elements
.md_escape` does, plus parentheses and "!"), line breaks become spaces (no new block can start), control
characters go, the text is clipped, and URLs are broken with a zero-width space so clients that link
bare URLs by themselves do not. Cards should prefer a `TextRun` (never markdown) where they can.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_\[\]()<>~#|!])")
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)")
_WWW = re.compile(r"(?i)\bwww\.")
ZWSP = "\u200b"


def md_outside(text: object, limit: int = 200) -> str:
    """`text` as literal markdown, one line, at most `limit` characters before escaping."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    flat = _SCHEME.sub(lambda m: f"{m.group(1)}{ZWSP}:", flat)
    flat = _WWW.sub(lambda m: f"{m.group(0)[:3]}{ZWSP}.", flat)
    return _SPECIAL.sub(r"\\\1", flat)
