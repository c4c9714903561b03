"""The solution zip, laid out as Dataverse exports it: `[Content_Types].xml`, `customizations.xml`
and `solution.xml` at the root. Deterministic: fixed entry order, timestamps and permissions, so the
same tables.py and version give the same bytes."""

from __future__ import annotations

import functools
import io
import zipfile

from bot.solution.customizations import customizations_xml
from bot.solution.manifest import solution_xml
from bot.solution.version import solution_version, to_solution_version

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="xml" ContentType="application/octet-stream" />'
    b"</Types>"
)
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def solution_files(*, managed: bool, version: str | None = None) -> dict[str, bytes]:
    """The package's files by name, in the order they are written."""
    full = to_solution_version(version or solution_version())
    return {
        "[Content_Types].xml": CONTENT_TYPES,
        "customizations.xml": customizations_xml(managed=managed),
        "solution.xml": solution_xml(managed=managed, version=full),
    }


def build_zip(*, managed: bool, version: str | None = None) -> bytes:
    """The importable solution zip (managed or unmanaged) for `version` (default: the project's)."""
    return _build(managed, to_solution_version(version or solution_version()))


# The tables are fixed for the process's life, so a zip is built once per (managed, version): the bot,
# the sandbox and their tests ask for it often, and a build takes some 60 ms.
@functools.lru_cache(maxsize=8)
def _build(managed: bool, version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in solution_files(managed=managed, version=version).items():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0  # the same bytes whichever OS builds it
            info.external_attr = 0
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()
