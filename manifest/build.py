"""Build the Teams app package: `python -m manifest.build` writes build/appPackage.zip.

The manifest is `manifest.template.json` filled from the settings (bot id, public host) and from the
command table (`bot.commands.COMMANDS`), so the command menu never drifts from what the bot
understands. The zip holds manifest.json, color.png and outline.png at its root, as Teams requires.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

from bot.commands import MENU, Command
from bot.config import Settings, load_settings
from bot.errors import ConfigError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "manifest.template.json"
ICONS = ("color.png", "outline.png")
PACKAGE_NAME = "appPackage.zip"

# Used when no Microsoft app id is configured (local use with the Agents Playground only).
PLACEHOLDER_BOT_ID = "00000000-0000-4000-8000-000000000001"
# The Teams app id is derived from the bot id, so one bot registration always gets the same app id
# (Teams treats a new id as a different app) and two registrations never share one.
_APP_ID_NAMESPACE = uuid.UUID("6f1c7d0e-54a9-4d53-9b1e-3c2f0a8d9e41")

# Schema v1.22 allows 10 commands per list, titles up to 128 characters, descriptions up to 4000
# (Teams shows 128 at most; bot.commands keeps them within that).
MAX_COMMANDS_PER_LIST = 10
SCOPES = ("personal", "team", "groupChat")
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same bytes


def app_id_for(bot_id: str) -> str:
    return str(uuid.uuid5(_APP_ID_NAMESPACE, bot_id.lower()))


def menu_commands(commands: tuple[Command, ...] = MENU) -> list[dict[str, str]]:
    """The command menu: the table's order is its priority, cut to what the schema allows."""
    if len(commands) > MAX_COMMANDS_PER_LIST:
        left_out = ", ".join(c.name for c in commands[MAX_COMMANDS_PER_LIST:])
        log.warning("the command menu holds %d commands; left out: %s", MAX_COMMANDS_PER_LIST, left_out)
    return [{"title": c.name, "description": c.description} for c in commands[:MAX_COMMANDS_PER_LIST]]


def render_manifest(settings: Settings) -> dict[str, Any]:
    """The manifest for these settings, as a dict (validated by the tests against the v1.22 schema)."""
    template: dict[str, Any] = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    manifest = copy.deepcopy(template)
    bot_id = settings.microsoft_app_id
    if not bot_id:
        log.warning(
            "MICROSOFT_APP_ID is not set: the package uses the placeholder bot id %s, "
            "fine for local tools, not for uploading to Teams",
            PLACEHOLDER_BOT_ID,
        )
        bot_id = PLACEHOLDER_BOT_ID
    base = settings.public_base_url
    manifest["id"] = app_id_for(bot_id)
    manifest["developer"]["websiteUrl"] = base
    manifest["developer"]["privacyUrl"] = f"{base}/privacy"
    manifest["developer"]["termsOfUseUrl"] = f"{base}/terms"
    bot = manifest["bots"][0]
    bot["botId"] = bot_id
    commands = menu_commands()
    bot["commandLists"] = [{"scopes": [scope], "commands": commands} for scope in SCOPES]
    manifest["validDomains"] = [settings.public_host]
    return manifest


def build_package(settings: Settings, out_dir: Path) -> Path:
    """Write `out_dir/appPackage.zip` and return its path."""
    manifest = render_manifest(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / PACKAGE_NAME
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entries = [
            ("manifest.json", (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        ]
        entries += [(name, (HERE / name).read_bytes()) for name in ICONS]
        for name, content in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    partial.replace(target)
    log.info("Teams app package written to %s", target)
    return target


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m manifest.build",
        description=f"Build the Teams app package ({PACKAGE_NAME}: manifest.json and the two icons).",
        epilog=(
            "The bot id and public host come from MICROSOFT_APP_ID and PUBLIC_BASE_URL (environment or .env); "
            "a bad setting exits with code 2."
        ),
    )
    parser.add_argument(
        "out_dir", nargs="?", type=Path, default=Path("build"), help="where to write the package (default: build)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    out_dir: Path = parse_args(sys.argv[1:] if argv is None else argv).out_dir
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    logging.getLogger().setLevel(settings.log_level)
    build_package(settings, out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
