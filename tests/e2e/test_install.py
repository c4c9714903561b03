"""An environment without our solution: "Install it for me" in the Playground, then on to the first result.

Alice is a System Administrator of Contoso Test, where our solution is not installed: the card offers to
install it, shows the import's progress, and the setup carries on by itself when the import is done.
"""

from __future__ import annotations

import pytest

from bot.solution import solution_version
from sandbox.xero.seed import NZ_ORG_NAME, NZ_TENANT_ID
from tests.e2e.flows import (
    Choices,
    connect_dynamics,
    connect_xero,
    first_run_result,
    install_solution_for_me,
    save_settings,
)
from tests.e2e.playground import E2E
from tests.e2e.sandbox_api import Sandboxes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CHOICES = Choices(
    org_name=NZ_ORG_NAME,
    env_name="Contoso Test",
    env_unique="contosotest",
    connection_name="Harbourside to Contoso Test",
    plan="Trial",
    timezone_typed="Auck",
    timezone_title="Auckland",
    code_in="card",
)


def test_install_it_for_me_then_the_first_result(e2e: E2E) -> None:
    sandboxes = Sandboxes(e2e.product)
    assert sandboxes.solution_versions(CHOICES.env_unique) == []
    sandboxes.import_timing(3.0)  # long enough to see the progress line
    chat = e2e.app.personal_chat()
    chat.send("sync connect")
    connect_xero(chat, CHOICES)
    connect_dynamics(chat, CHOICES, solution_installed=False)
    install_solution_for_me(chat, CHOICES)
    assert sandboxes.solution_versions(CHOICES.env_unique) == [solution_version()]

    save_settings(chat, CHOICES)
    first_run_result(chat, CHOICES)
    sandboxes.assert_synced(CHOICES.env_unique, CHOICES.connection_name, NZ_TENANT_ID)
