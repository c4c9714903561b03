"""Secrets at rest: after a full flow (sign in to Xero and Dynamics, sync, tokens refreshed), no access
or refresh token, client secret or encryption key is readable in the SQLite files, in Redis (values and
its append-only file) or in the logs at DEBUG; and the encryption key rotates without losing a token.

The flow is the integration harness's (`tests/integration/harness.py`): the product's own OAuth code,
token providers and engine against the sandboxes. The scan looks for the tokens the product actually
holds (decrypted from the store here) and for every token the Xero sandbox ever issued, and first checks
that it is looking in the right place: the encrypted blobs must be found in the same bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.crypto import TokenCipher, rotate_all
from bot.errors import StoreError
from bot.storage.base import RunOutcome
from bot.sync.runtime import open_sync_runtime
from bot.sync.xero_auth import XeroTokenSet
from sandbox.xero.seed import AU_TENANT_ID, DEMO_EMAIL
from tests.conftest import RedisServer
from tests.integration.harness import Harness, open_harness
from tests.security.secrets_scan import (
    held_secrets,
    leaks,
    product_logging,
    redis_bytes,
    sqlite_bytes,
)

XERO_ACCESS_LIFETIME = 30 * 60


@dataclass
class Backend:
    name: str
    redis_url: str = ""
    aof_dir: Path | None = None


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite")
    url = request.getfixturevalue("redis_url")
    server: RedisServer = request.getfixturevalue("redis_server")
    return Backend("redis", url, getattr(server, "_dir", None) if server.proc is not None else None)


@pytest.fixture
async def harness(tmp_path: Path, backend: Backend) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path, redis_url=backend.redis_url) as h:
        yield h


def _stored(h: Harness, backend: Backend) -> bytes:
    return redis_bytes(backend.redis_url, backend.aof_dir) if backend.redis_url else sqlite_bytes(h.data_dir)


async def _save_issued_tokens(h: Harness, connection_id: str) -> XeroTokenSet:
    """A token set straight from the Xero sandbox, saved through the product's token provider."""
    body = h.xero.issue_tokens(DEMO_EMAIL, tenant_ids=[AU_TENANT_ID])
    # Already expired by any clock (the provider's and the sandbox's), so the next use refreshes it.
    expired = min(h.clock.now(), datetime.now(UTC)) - timedelta(hours=1)
    tokens = XeroTokenSet(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        expires_at=expired,
        refresh_issued_at=expired,
        scope=body["scope"],
    )
    await h.runtime.xero_tokens.save(connection_id, tokens)
    return tokens


async def test_no_secret_in_plain_text_in_the_store_or_the_logs(harness: Harness, backend: Backend) -> None:
    h = harness
    with product_logging() as logs:
        connection = await h.connect()
        first = await h.run(connection.id)
        # Past the access tokens' lifetime: the second run refreshes (Xero rotates the refresh token).
        h.clock.advance(XERO_ACCESS_LIFETIME + 60)
        second = await h.run(connection.id)
        issued = await _save_issued_tokens(h, "conn-issued")
        await h.runtime.xero_tokens.access_token("conn-issued")  # expired on save: refreshed now

    assert first.outcome == RunOutcome.SUCCEEDED, first.error
    assert second.outcome == RunOutcome.SUCCEEDED, second.error
    assert h.runtime.xero_tokens.refreshes >= 2, "the flow must have rotated tokens for the scan to mean much"

    held, blobs = await held_secrets(h.store, h.runtime.cipher)
    kinds = {kind for kind, _ in held}
    assert {
        "Xero access token",
        "Xero refresh token",
        "Dynamics AccessToken",
        "Dynamics RefreshToken",
    } <= kinds
    secrets: list[tuple[str, str]] = [
        *held,
        ("Xero access token (ever issued)", issued.access_token),
        ("Xero refresh token (ever issued)", issued.refresh_token),
        *[("Xero access token (ever issued)", t) for t in h.xero.identity.access_tokens],
        *[("Xero refresh token (ever issued)", t) for t in h.xero.identity.refresh_tokens],
        ("Xero client secret", h.settings.xero_client_secret.get_secret_value()),
        ("Dynamics client secret", h.settings.dynamics_client_secret.get_secret_value()),
        *[("token encryption key", key) for key in h.settings.token_encryption_keys],
    ]
    assert len(h.xero.identity.refresh_tokens) >= 4  # consent, two refreshes, issue_tokens

    stored = _stored(h, backend)
    for blob in blobs:
        assert blob in stored, "the scan must read the bytes where the encrypted tokens live"
    assert connection.id.encode() in stored
    assert leaks(stored, secrets) == [], f"plain-text secrets in the {backend.name} store"

    raw = "\n".join(logs.raw.lines)
    assert len(logs.raw.lines) > 10, "DEBUG logging must have captured the flow"
    assert any(" DEBUG " in line for line in logs.raw.lines)
    assert leaks(raw, secrets) == [], "secrets in log records (before the product's redaction)"
    assert leaks(logs.product.getvalue(), secrets) == [], "secrets in the product's log output"


async def test_rotating_the_encryption_key_keeps_every_connection_working(harness: Harness) -> None:
    h = harness
    connections = [await h.connect(), await h.connect(tenant_id=AU_TENANT_ID)]
    old_key = h.settings.token_encryption_keys[0]
    before = {(c, k): h.runtime.cipher.decrypt(b) for c, k, b in await h.store.all_token_blobs()}
    assert len(before) == 4  # Xero and Dynamics tokens of two connections

    new_key = TokenCipher.generate_key()
    rotating = TokenCipher([new_key, old_key])  # new key first: it encrypts, both decrypt
    assert await rotate_all(h.store, rotating) == 4

    new_only = TokenCipher([new_key])
    old_only = TokenCipher([old_key])
    after = await h.store.all_token_blobs()
    for connection_id, kind, blob in after:
        assert new_only.decrypt(blob) == before[(connection_id, kind)]
        with pytest.raises(StoreError):
            old_only.decrypt(blob)  # really rewritten, not just readable

    # The old key is dropped from the configuration: a fresh runtime with only the new key syncs every
    # connection, refreshing tokens on the way (written back with the new key).
    settings = h.settings.model_copy(update={"token_encryption_keys": (new_key,)})
    h.clock.advance(XERO_ACCESS_LIFETIME + 60)
    async with open_sync_runtime(settings, h.store, h.notifier, clock=h.clock) as runtime:
        for connection in connections:
            run = await runtime.engine.run(connection.id, "on_demand")
            assert run.outcome == RunOutcome.SUCCEEDED, run.error
        assert runtime.xero_tokens.refreshes == 2
    for _connection_id, _kind, blob in await h.store.all_token_blobs():
        new_only.decrypt(blob)
        with pytest.raises(StoreError):
            old_only.decrypt(blob)


async def test_a_wrong_key_is_an_error_that_names_no_secret(harness: Harness) -> None:
    """Losing the key must fail loudly (reconnect needed), never decrypt garbage or print the key."""
    h = harness
    connection = await h.connect()
    stranger = TokenCipher([TokenCipher.generate_key()])
    blob = await h.store.get_tokens(
        connection.id, next(iter(k for _c, k, _b in await h.store.all_token_blobs()))
    )
    assert blob is not None
    with pytest.raises(StoreError) as caught:
        stranger.decrypt(blob)
    message = str(caught.value)
    for key in h.settings.token_encryption_keys:
        assert key not in message
    assert blob.decode("ascii", "replace")[:40] not in message


async def test_after_the_setup_in_teams_no_secret_in_plain_text(tmp_path: Path) -> None:
    """The same scan after the conversational setup (sign-in links, callbacks, pending sign-ins, the
    verification code, the settings card) and its first run: what the setup keeps on the way (dialog
    state, OAuth states, pending token sets) must not hold a secret in the clear either."""
    from tests.scenario.botharness import ALICE, connect_via_chat, open_bot

    with product_logging() as logs:
        async with open_bot(tmp_path) as bot:
            connection = await connect_via_chat(bot.personal(ALICE), name="Acme")
            run = await bot.harness.run(connection.id)
            assert run.outcome == RunOutcome.SUCCEEDED, run.error
            held, blobs = await held_secrets(bot.store, bot.runtime.cipher)
            secrets: list[tuple[str, str]] = [
                *held,
                *[("Xero access token (ever issued)", t) for t in bot.sandboxes.xero.identity.access_tokens],
                *[
                    ("Xero refresh token (ever issued)", t)
                    for t in bot.sandboxes.xero.identity.refresh_tokens
                ],
                ("Xero client secret", bot.settings.xero_client_secret.get_secret_value()),
                ("Dynamics client secret", bot.settings.dynamics_client_secret.get_secret_value()),
                *[("token encryption key", key) for key in bot.settings.token_encryption_keys],
            ]
            stored = sqlite_bytes(bot.data_dir)
    assert {"Xero refresh token", "Dynamics RefreshToken"} <= {kind for kind, _ in held}
    for blob in blobs:
        assert blob in stored
    assert leaks(stored, secrets) == [], "plain-text secrets in the store after the setup in Teams"
    assert leaks("\n".join(logs.raw.lines), secrets) == [], "secrets in log records"
    assert leaks(logs.product.getvalue(), secrets) == [], "secrets in the product's log output"
