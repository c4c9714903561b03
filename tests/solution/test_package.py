"""The zip as Dataverse exports it, deterministic, flagged managed/unmanaged, versioned from the
project; the `python -m bot.solution` command."""

from __future__ import annotations

import importlib.metadata
import io
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from bot.solution import build_zip, package, solution_version, zip_filename
from bot.solution import version as version_module
from bot.solution.__main__ import main
from bot.sync.tables import ALL_TABLES

ROOT = Path(__file__).resolve().parents[2]


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize("managed", [True, False], ids=["managed", "unmanaged"])
def test_the_zip_holds_the_three_files_at_its_root(managed: bool) -> None:
    files = _files(build_zip(managed=managed))
    assert sorted(files) == ["[Content_Types].xml", "customizations.xml", "solution.xml"]
    types = ET.fromstring(files["[Content_Types].xml"])
    assert types.tag == "{http://schemas.openxmlformats.org/package/2006/content-types}Types"
    assert [(d.get("Extension"), d.get("ContentType")) for d in types] == [
        ("xml", "application/octet-stream")
    ]
    assert ET.fromstring(files["customizations.xml"]).tag == "ImportExportXml"
    assert ET.fromstring(files["solution.xml"]).findtext("SolutionManifest/Managed") == (
        "1" if managed else "0"
    )


def test_two_builds_give_the_same_bytes() -> None:
    # Past the cache: two real builds, each from scratch.
    uncached = package._build.__wrapped__
    for managed in (True, False):
        first, second = uncached(managed, "1.1.0.0"), uncached(managed, "1.1.0.0")
        assert first is not second
        assert first == second == build_zip(managed=managed, version="1.1.0")
    assert build_zip(managed=True) != build_zip(managed=False)
    assert build_zip(managed=True, version="1.1.0.0") != build_zip(managed=True, version="1.1.0.1")
    with zipfile.ZipFile(io.BytesIO(build_zip(managed=True))) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_managed_locks_our_columns_keys_and_choices_but_not_tables_or_role() -> None:
    def flags(managed: bool, path: str) -> set[str | None]:
        root = ET.fromstring(_files(build_zip(managed=managed))["customizations.xml"])
        return {node.findtext("IsCustomizable") for node in root.iterfind(path)}

    custom_columns = ".//attributes/attribute[IsCustomField='1']"
    for path in (custom_columns, ".//EntityKeys/EntityKey", "optionsets/optionset"):
        assert flags(True, path) == {"0"}, path
        assert flags(False, path) == {"1"}, path
    for path in ("Entities/Entity/EntityInfo/entity", "Roles/Role"):
        assert flags(True, path) == flags(False, path) == {"1"}, path


def test_the_version_comes_from_the_project() -> None:
    installed = importlib.metadata.version("xero-dynamics-teams-connector")
    parts = re.findall(r"\d+", installed)[:3]
    assert solution_version() == ".".join([*parts, *["0"] * (4 - len(parts))])
    manifest = ET.fromstring(_files(build_zip(managed=True))["solution.xml"])
    assert manifest.findtext("SolutionManifest/Version") == solution_version()


def test_without_installed_metadata_the_version_is_read_from_pyproject(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version_module.importlib.metadata, "version", missing)
    with (ROOT / "pyproject.toml").open("rb") as handle:
        declared = tomllib.load(handle)["project"]["version"]
    assert version_module.project_version() == declared
    assert solution_version() == version_module.to_solution_version(declared)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1.1.0", "1.1.0.0"),
        ("1.2", "1.2.0.0"),
        ("2", "2.0.0.0"),
        ("1.1.0rc1", "1.1.0.0"),
        ("1.2.3.4", "1.2.3.4"),
        ("01.1.0", "1.1.0.0"),
    ],
)
def test_four_part_versions(given: str, expected: str) -> None:
    assert version_module.to_solution_version(given) == expected


def test_a_version_without_numbers_is_refused() -> None:
    with pytest.raises(ValueError, match="not a version"):
        version_module.to_solution_version("latest")


def test_file_names_are_the_ones_dataverse_exports_use() -> None:
    assert zip_filename(managed=True, version="1.1.0") == "XeroDynamicsConnector_1_1_0_0_managed.zip"
    assert zip_filename(managed=False, version="1.1.0.0") == "XeroDynamicsConnector_1_1_0_0.zip"
    assert (
        zip_filename(managed=True)
        == f"XeroDynamicsConnector_{solution_version().replace('.', '_')}_managed.zip"
    )


def test_the_command_writes_both_zips_and_prints_their_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path / "out"), "--version", "1.1.0"]) == 0
    printed = capsys.readouterr().out.split()
    expected = [tmp_path / "out" / zip_filename(managed=m, version="1.1.0.0") for m in (True, False)]
    assert printed == [str(p) for p in expected]
    for path, managed in zip(expected, (True, False), strict=True):
        assert path.read_bytes() == build_zip(managed=managed, version="1.1.0.0")


def test_the_command_runs_as_a_module_with_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.solution", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "--out" in done.stdout
    assert "managed and unmanaged" in done.stdout


def test_every_table_is_a_root_component_of_the_zip() -> None:
    manifest = ET.fromstring(_files(build_zip(managed=False))["solution.xml"])
    tables = [
        c.get("schemaName")
        for c in manifest.iterfind("SolutionManifest/RootComponents/RootComponent[@type='1']")
    ]
    assert tables == [t.logical_name for t in ALL_TABLES]
