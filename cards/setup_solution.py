"""The setup card's solution step: our solution missing, older, too old, or being installed.

Three ways to get it (bot.dialogs.solution_step decides which apply): "Install it for me" for a user who
may import solutions, the download link with the import steps, and the AppSource listing when configured.
Names and versions come from Dynamics 365, so they are escaped wherever markdown would render them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.sync.tables import SECURITY_ROLE_NAME, SOLUTION_FRIENDLY_NAME
from cards.base import clip
from cards.elements import action_set, md_escape, open_url, plain_lines, submit, text
from cards.template import Json
from cards.verbs import CardVerb

if TYPE_CHECKING:
    from cards.setup import SetupCardData, SolutionHelp

INSTALLERS = "a System Administrator or System Customizer"


def solution_panel(data: SetupCardData, problem: list[Json]) -> list[Json]:
    help_ = data.solution
    if help_.installing:
        return _installing_panel(data, problem)
    upgrade = help_.state == "older"
    if help_.state in ("current", "newer") and help_.compatible:
        # Installed and usable: what remains is Dataverse preparing it, or the user's privileges.
        return [_installed_panel(data), *_privileges(help_), *problem, _actions(data, upgrade=False)]
    items: list[Json] = [_solution_intro(help_)]
    verb = "Upgrade" if upgrade else "Install"
    if help_.can_install:
        items.append(text(f"**{verb} it for me**: I import it into {_md(help_.env_name) or 'the environment'} for you."))
        items.append(action_set([submit(f"{verb} it for me", CardVerb.SOLUTION_INSTALL, setup_id=data.setup_id)]))
    elif help_.state in ("missing", "older"):
        lacking = ", ".join(clip(p, 60) for p in help_.missing_import[:6])
        items.append(
            text(
                f"I can't {verb.lower()} it for you: your Dynamics 365 user can't import solutions"
                + (f" (it lacks {lacking})" if lacking else "")
                + f". {INSTALLERS} of {_md(help_.env_name) or 'the environment'} can, in one of the ways below.",
                size="Small",
                color="Warning",
            )
        )
    if help_.solution_zip_url:
        items.append(
            text(
                "**Download and import**:\n\n"
                "1. Download the zip (below); don't unzip it.\n\n"
                "2. In Power Apps (make.powerapps.com), pick the environment and open **Solutions**.\n\n"
                "3. Choose **Import solution**, **Browse**, select the zip, then **Next** and **Import**.\n\n"
                "4. When it says the import completed, choose **Check again** here."
            )
        )
        items.append(action_set([open_url("Download the solution zip", help_.solution_zip_url)]))
    if help_.appsource_url:
        items.append(text("**From Microsoft AppSource**: open the listing, choose **Get it now** and pick the environment."))
        items.append(action_set([open_url("Open the AppSource listing", help_.appsource_url)]))
    items += _privileges(help_)
    items += problem
    items.append(_actions(data, upgrade=upgrade))
    return items


def _privileges(help_: SolutionHelp) -> list[Json]:
    items: list[Json] = []
    if help_.missing_privileges:
        shown = help_.missing_privileges[:15]
        more = len(help_.missing_privileges) - len(shown)
        listing = [f"• {clip(p, 100)}" for p in shown] + ([f"• and {more} more"] if more else [])
        items.append(
            text(
                f"Your Dynamics 365 user lacks these privileges. Ask an administrator to give you the "
                f"**{SECURITY_ROLE_NAME}** security role:",
                color="Warning",
            )
        )
        items += plain_lines("\n".join(listing), size="Small")
    return items


def _actions(data: SetupCardData, *, upgrade: bool) -> Json:
    help_ = data.solution
    actions = [submit("Check again", CardVerb.SOLUTION_CHECK_AGAIN, setup_id=data.setup_id)]
    if upgrade and help_.compatible:
        actions.append(
            submit(
                f"Continue with version {clip(help_.installed_version, 20)}",
                CardVerb.SOLUTION_CONTINUE,
                setup_id=data.setup_id,
            )
        )
    if data.other_environments:
        # Signed in already: this goes back to the choice of environment, not to a new sign-in.
        actions.append(submit("Choose another environment", CardVerb.DYNAMICS_RETRY, setup_id=data.setup_id))
    return action_set(actions)


def _installed_panel(data: SetupCardData) -> Json:
    help_ = data.solution
    where = _md(help_.env_name) or "the environment"
    return text(f"**{SOLUTION_FRIENDLY_NAME}** {_md(clip(help_.installed_version, 20))} is installed in {where}.")


def _md(value: str) -> str:
    """Text from Dynamics 365 (names, versions) inside a markdown TextBlock: shown as typed, never as markup."""
    return md_escape(value)


def _solution_intro(help_: SolutionHelp) -> Json:
    where = _md(help_.env_name) or "the Dynamics 365 environment you will connect"
    if help_.state == "older":
        return text(
            f"**{SOLUTION_FRIENDLY_NAME}** {_md(clip(help_.installed_version, 20))} is installed in {where}; "
            f"this bot ships {_md(clip(help_.shipped_version, 20))}."
        )
    if help_.state == "newer" and not help_.compatible:
        return text(f"{where} has a version of **{SOLUTION_FRIENDLY_NAME}** this bot can't use.")
    return text(
        f"The sync writes to tables that come with our solution, **{SOLUTION_FRIENDLY_NAME}**, "
        f"with a security role, **{SECURITY_ROLE_NAME}**. It isn't in {where} yet."
    )


def _installing_panel(data: SetupCardData, problem: list[Json]) -> list[Json]:
    help_ = data.solution
    line = clip(help_.progress or "Installing…", 80)
    return [
        text(f"⏳ Installing **{SOLUTION_FRIENDLY_NAME}** {_md(clip(help_.shipped_version, 20))} in {_md(help_.env_name)}: {_md(line)}"),
        text("This takes a minute or two; I'll carry on with the setup when it's done.", size="Small"),
        *problem,
    ]
