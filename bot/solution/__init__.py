"""The Dataverse solution package of the connector, generated from bot.sync.tables.

Public API (the Dataverse sandbox's importer and the CLI use exactly these):
`solution_version()`, `build_zip(managed=..., version=...)`, `zip_filename(managed=..., version=...)`.
"""

from bot.solution.package import build_zip
from bot.solution.version import solution_version, zip_filename

__all__ = ["build_zip", "solution_version", "zip_filename"]
