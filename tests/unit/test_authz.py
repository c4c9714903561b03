"""Who may see and operate a connection: same conversation, same tenant; changes by its creator."""

from __future__ import annotations

import pytest

from bot.storage.base import Connection, ConnectionStatus
from bot.teams.authz import NOT_HERE, Authorizer, Denied, Permission, Requester

CONNECTION = Connection(
    id="c1",
    name="Acme",
    teams_tenant_id="tenant-a",
    conversation_key="msteams:19:chan@thread.tacv2",
    created_by_aad_id="alice",
    created_by_name="Alice Anders",
    xero_tenant_id="xero-1",
)
ALICE = Requester("tenant-a", "msteams:19:chan@thread.tacv2", "alice", "Alice Anders")
BOB = Requester("tenant-a", "msteams:19:chan@thread.tacv2", "bob", "Bob Brown")


class OwnersAre:
    def __init__(self, *owners: str) -> None:
        self.owners = set(owners)

    async def is_team_owner(self, requester: Requester, connection: Connection) -> bool:
        return requester.user_id in self.owners


async def test_anyone_here_may_look_and_run_only_the_creator_may_change() -> None:
    authz = Authorizer()
    assert await authz.require(CONNECTION, BOB, Permission.VIEW) is CONNECTION
    assert await authz.require(CONNECTION, ALICE, Permission.MANAGE) is CONNECTION
    with pytest.raises(Denied, match="Only Alice Anders"):
        await authz.require(CONNECTION, BOB, Permission.MANAGE)


@pytest.mark.parametrize(
    "elsewhere",
    [
        Requester("tenant-a", "msteams:a:personal-alice", "alice"),  # the creator, in another chat
        Requester("tenant-b", "msteams:19:chan@thread.tacv2", "alice"),  # same conversation id, other tenant
        Requester("", "msteams:19:chan@thread.tacv2", "alice"),  # no tenant at all
    ],
)
async def test_elsewhere_the_connection_does_not_exist(elsewhere: Requester) -> None:
    authz = Authorizer()
    assert not authz.visible(CONNECTION, elsewhere)
    for permission in Permission:
        with pytest.raises(Denied) as denied:
            await authz.require(CONNECTION, elsewhere, permission)
        assert str(denied.value) == NOT_HERE  # the same words as for an id that does not exist
    with pytest.raises(Denied) as unknown:
        await authz.require(None, ALICE, Permission.VIEW)
    assert str(unknown.value) == NOT_HERE


async def test_a_disconnected_connection_is_gone_for_everyone() -> None:
    gone = CONNECTION.model_copy(update={"status": ConnectionStatus.DISCONNECTED})
    with pytest.raises(Denied):
        await Authorizer().require(gone, ALICE, Permission.VIEW)


async def test_a_team_owner_may_change_it_when_an_owner_check_says_so() -> None:
    authz = Authorizer(OwnersAre("bob"))
    assert await authz.may_manage(CONNECTION, BOB)
    carol = Requester("tenant-a", "msteams:19:chan@thread.tacv2", "carol")
    assert not await authz.may_manage(CONNECTION, carol)
    # Ownership of another team does not reach into this conversation.
    assert not await authz.may_manage(CONNECTION, Requester("tenant-a", "msteams:19:other", "bob"))


def test_which_commands_change_a_connection() -> None:
    assert {
        c for c in ("status", "now", "history") if Authorizer.permission_for(c) is Permission.MANAGE
    } == set()
    assert all(
        Authorizer.permission_for(c) is Permission.MANAGE
        for c in ("settings", "pause", "resume", "disconnect")
    )


async def test_an_empty_user_id_is_never_the_creator() -> None:
    nameless = CONNECTION.model_copy(update={"created_by_aad_id": ""})
    assert not await Authorizer().may_manage(nameless, Requester("tenant-a", CONNECTION.conversation_key, ""))
