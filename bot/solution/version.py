"""The solution's version and file names, derived from the project's version.

A Dataverse solution version has four numeric parts (major.minor.build.revision); importing a
solution whose version is not higher than the installed one is how an upgrade is recognised, so the
package always carries the project version (pyproject.toml) padded to four parts.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import tomllib
from pathlib import Path

from bot.sync.tables import SOLUTION_UNIQUE_NAME

logger = logging.getLogger(__name__)

DISTRIBUTION = "xero-dynamics-teams-connector"
_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
_LEADING_NUMBERS = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?")


def project_version() -> str:
    """The project's version: the installed distribution's metadata, else pyproject.toml."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        logger.debug("%s is not installed: reading %s", DISTRIBUTION, _PYPROJECT)
    with _PYPROJECT.open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def to_solution_version(version: str) -> str:
    """`1.1.0` -> `1.1.0.0`; `1.2` -> `1.2.0.0`; `1.1.0rc1` -> `1.1.0.0` (pre-release tags dropped:
    Dataverse versions are numbers only)."""
    match = _LEADING_NUMBERS.match(version)
    if match is None:
        raise ValueError(f"not a version: {version!r}")
    return ".".join(str(int(part)) if part else "0" for part in match.groups())


def solution_version() -> str:
    """The four-part Dataverse version of this build, e.g. project 1.1.0 -> "1.1.0.0"."""
    return to_solution_version(project_version())


def zip_filename(*, managed: bool, version: str | None = None) -> str:
    """As Dataverse names an export: `XeroDynamicsConnector_1_1_0_0_managed.zip` / `..._1_1_0_0.zip`."""
    parts = to_solution_version(version or solution_version()).replace(".", "_")
    return f"{SOLUTION_UNIQUE_NAME}_{parts}{'_managed' if managed else ''}.zip"
