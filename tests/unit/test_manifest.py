"""The Teams app package: manifest against the official v1.22 schema, icons, zip layout."""

from __future__ import annotations

import copy
import io
import json
import logging
import uuid
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import validators
from PIL import Image

from bot.commands import COMMANDS
from bot.config import Settings, load_settings
from manifest import build as build_module
from manifest.build import (
    MAX_COMMANDS_PER_LIST,
    PLACEHOLDER_BOT_ID,
    app_id_for,
    build_package,
    main,
    menu_commands,
)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "specs" / "teams" / "v1.22" / "MicrosoftTeams.schema.json"
BOT_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

Json = dict[str, Any]

# The Teams schemas declare draft-04 but use draft-06's `const` (for manifestVersion). Draft4Validator
# ignores keywords it does not know, so `const` is added from Draft 6; everything else stays Draft 4.
TeamsValidator = validators.extend(
    jsonschema.Draft4Validator, {"const": jsonschema.Draft6Validator.VALIDATORS["const"]}
)


@pytest.fixture(scope="module")
def schema() -> Json:
    loaded: Json = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert loaded["$schema"] == "http://json-schema.org/draft-04/schema#"
    return loaded


@pytest.fixture(scope="module")
def validator(schema: Json) -> jsonschema.protocols.Validator:
    jsonschema.Draft4Validator.check_schema(schema)
    return TeamsValidator(schema)


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"_env_file": None, "public_base_url": "https://sync.example.com"}
    values.update(overrides)
    return load_settings(**values)


def _open(package: Path) -> tuple[Json, zipfile.ZipFile]:
    archive = zipfile.ZipFile(package)
    manifest: Json = json.loads(archive.read("manifest.json"))
    return manifest, archive


@pytest.fixture
def built(tmp_path: Path) -> tuple[Json, zipfile.ZipFile]:
    settings = _settings(microsoft_app_id=BOT_ID, microsoft_app_password="secret")
    return _open(build_package(settings, tmp_path / "out"))


def test_validator_really_checks_const_enum_and_required(
    validator: jsonschema.protocols.Validator, built: tuple[Json, zipfile.ZipFile]
) -> None:
    manifest, _ = built
    validator.validate(manifest)

    wrong_version = copy.deepcopy(manifest)
    wrong_version["manifestVersion"] = "1.21"
    assert not validator.is_valid(wrong_version)
    # The plain Draft 4 validator would let it through: this is why `const` was added.
    assert jsonschema.Draft4Validator(validator.schema).is_valid(wrong_version)

    for field in ("developer", "icons", "id", "accentColor"):
        missing = copy.deepcopy(manifest)
        del missing[field]
        assert not validator.is_valid(missing), field

    bad_scope = copy.deepcopy(manifest)
    bad_scope["bots"][0]["scopes"] = ["personal", "everywhere"]
    assert not validator.is_valid(bad_scope)
    bad_id = copy.deepcopy(manifest)
    bad_id["bots"][0]["botId"] = "not-a-guid"
    assert not validator.is_valid(bad_id)
    too_many = copy.deepcopy(manifest)
    too_many["bots"][0]["commandLists"][0]["commands"] *= 2
    assert not validator.is_valid(too_many)


def test_manifest_content(built: tuple[Json, zipfile.ZipFile]) -> None:
    manifest, archive = built
    assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
    assert (
        manifest["$schema"]
        == "https://developer.microsoft.com/json-schemas/teams/v1.22/MicrosoftTeams.schema.json"
    )
    assert manifest["manifestVersion"] == "1.22"
    assert manifest["id"] == app_id_for(BOT_ID)
    assert uuid.UUID(manifest["id"]).version == 5
    (bot,) = manifest["bots"]
    assert bot["botId"] == BOT_ID
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is False
    assert sorted(s for lst in bot["commandLists"] for s in lst["scopes"]) == [
        "groupChat",
        "personal",
        "team",
    ]
    expected = [{"title": c.name, "description": c.description} for c in COMMANDS if c.in_menu]
    assert len(expected) <= MAX_COMMANDS_PER_LIST
    assert {"preview", "why"} <= {e["title"] for e in expected}
    for command_list in bot["commandLists"]:
        assert command_list["commands"] == expected
    assert manifest["validDomains"] == ["sync.example.com"]
    assert manifest["developer"]["privacyUrl"] == "https://sync.example.com/privacy"
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_commands_per_list_follow_the_schema_limit(schema: Json) -> None:
    items = schema["properties"]["bots"]["items"]["properties"]["commandLists"]["items"]
    assert items["properties"]["commands"]["maxItems"] == MAX_COMMANDS_PER_LIST


def test_menu_is_cut_to_the_limit_in_table_order(caplog: pytest.LogCaptureFixture) -> None:
    many = tuple(COMMANDS) * 2
    with caplog.at_level(logging.WARNING, logger=build_module.__name__):
        menu = menu_commands(many)
    assert len(menu) == MAX_COMMANDS_PER_LIST
    assert [m["title"] for m in menu] == [c.name for c in many[:MAX_COMMANDS_PER_LIST]]
    assert "left out" in caplog.text


def test_icons(built: tuple[Json, zipfile.ZipFile]) -> None:
    _, archive = built
    color = Image.open(io.BytesIO(archive.read("color.png")))
    assert color.format == "PNG"
    assert color.size == (192, 192)
    rgba = color.convert("RGBA")
    alpha = rgba.getchannel("A").getextrema()
    assert alpha == (255, 255), "the colour icon is fully opaque"
    assert len(set(rgba.getdata())) > 2
    outline = Image.open(io.BytesIO(archive.read("outline.png")))
    assert outline.format == "PNG"
    assert outline.size == (32, 32)
    assert outline.mode == "RGBA"
    pixels = list(outline.getdata())
    transparent = [p for p in pixels if p[3] == 0]
    visible = [p for p in pixels if p[3] > 0]
    assert visible
    assert len(transparent) > len(pixels) // 2
    assert all(p[:3] == (255, 255, 255) for p in visible), "outline strokes are white"
    for corner in ((0, 0), (31, 0), (0, 31), (31, 31)):
        assert outline.getpixel(corner)[3] == 0  # type: ignore[index]


def test_placeholder_bot_id_without_app_id(
    tmp_path: Path, validator: jsonschema.protocols.Validator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=build_module.__name__):
        manifest, _ = _open(build_package(_settings(public_base_url="http://localhost:3978"), tmp_path))
    assert manifest["bots"][0]["botId"] == PLACEHOLDER_BOT_ID
    assert "placeholder" in caplog.text
    assert manifest["validDomains"] == ["localhost"]
    validator.validate(manifest)


def test_app_id_is_stable_and_per_bot(tmp_path: Path) -> None:
    settings = _settings(microsoft_app_id=BOT_ID, microsoft_app_password="secret")
    first = build_package(settings, tmp_path / "a").read_bytes()
    second = build_package(settings, tmp_path / "b").read_bytes()
    assert first == second
    assert app_id_for(BOT_ID) == app_id_for(BOT_ID.upper()) != app_id_for(PLACEHOLDER_BOT_ID)


def test_main_writes_the_package_and_prints_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (
        "MICROSOFT_APP_ID",
        "MICROSOFT_APP_PASSWORD",
        "XERO_CLIENT_ID",
        "DYNAMICS_CLIENT_ID",
        "SANDBOX",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bot.example.org")
    with caplog.at_level(logging.INFO):
        assert main([]) == 0
    package = tmp_path / "build" / "appPackage.zip"
    assert package.is_file()
    assert str(Path("build") / "appPackage.zip") in caplog.text
    assert capsys.readouterr().out == ""
    manifest, _ = _open(package)
    assert manifest["validDomains"] == ["bot.example.org"]


def test_main_reports_a_bad_setting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUBLIC_BASE_URL", "not a url")
    with caplog.at_level(logging.ERROR):
        assert main([str(tmp_path / "out")]) == 2
    assert "URL" in caplog.text
    assert not (tmp_path / "out").exists()
    assert capsys.readouterr().out == ""
