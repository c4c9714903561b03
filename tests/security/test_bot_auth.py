"""/api/messages with MICROSOFT_APP_ID set: only a token signed by the channel's key, for this bot,
from the channel's issuer, unexpired, and naming this activity's serviceUrl gets a turn.

The tests run their own OpenID issuer (metadata + JWKS, an RS256 key made here) and point the product's
settings (`BOT_OPENID_METADATA_URL`) at it, so botbuilder validates real signatures exactly as it does
against login.botframework.com. The accepted case comes first in spirit: if a good token were refused
too, every 401 below would prove nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from bot.crypto import TokenCipher
from tests.security.endpoint_app import (
    APP_ID,
    APP_PASSWORD,
    ClientFactory,
    Endpoint,
    activity,
    build_endpoint,
    build_product,
)
from tests.security.openid import CHANNEL_ISSUER, Issuer, new_key, serve_issuer

SERVICE_URL = "https://smba.trafficmanager.net/amer/"
# The attacker's own RSA key (made once: key generation is the slow part of these tests).
ATTACKER_KEY = new_key()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with serve_issuer() as served:
        yield served


@pytest.fixture
async def endpoint(tmp_path: Path, issuer: Issuer) -> Any:
    built = await build_endpoint(
        tmp_path,
        microsoft_app_id=APP_ID,
        microsoft_app_password=APP_PASSWORD,
        bot_openid_metadata_url=issuer.metadata_url,
    )
    yield built
    await built.store.close()


async def _post(
    aiohttp_client: ClientFactory, endpoint: Endpoint, body: dict[str, Any], token: str | None
) -> int:
    client = await aiohttp_client(endpoint.app)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = await client.post("/api/messages", json=body, headers=headers)
    await response.read()
    return response.status


async def test_a_correctly_signed_token_is_accepted(
    aiohttp_client: ClientFactory, endpoint: Endpoint, issuer: Issuer
) -> None:
    body = activity("event", service_url=SERVICE_URL)
    status = await _post(
        aiohttp_client, endpoint, body, issuer.token(audience=APP_ID, service_url=SERVICE_URL)
    )
    assert status in {200, 201}
    assert await endpoint.reached_bot(body)
    assert any(path.endswith("/keys") for path in issuer.fetches), "the keys came from our issuer"

    message = activity("message", conversation="a:conv-2", service_url=SERVICE_URL, text="sync help")
    status = await _post(
        aiohttp_client, endpoint, message, issuer.token(audience=APP_ID, service_url=SERVICE_URL)
    )
    assert status in {200, 201}
    assert endpoint.commands == ["sync help"]


def _bad_tokens(issuer: Issuer) -> dict[str, str]:
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = issuer.token(audience=APP_ID, service_url=SERVICE_URL)
    header, payload, signature = good.split(".")
    tampered_payload = issuer.token(audience=APP_ID, service_url="https://attacker.example/").split(".")[1]
    return {
        "forged signature (another key, our kid)": issuer.token(
            audience=APP_ID, service_url=SERVICE_URL, key=ATTACKER_KEY
        ),
        "forged signature (another key, unknown kid)": issuer.token(
            audience=APP_ID, service_url=SERVICE_URL, key=ATTACKER_KEY, kid="kid-unknown"
        ),
        "payload changed after signing": f"{header}.{tampered_payload}.{signature}",
        "signature stripped": f"{header}.{payload}.",
        "wrong audience (another bot)": issuer.token(audience="another-bot-app-id", service_url=SERVICE_URL),
        "no audience": issuer.token(audience="", service_url=SERVICE_URL),
        "wrong issuer": issuer.token(
            audience=APP_ID, service_url=SERVICE_URL, issuer="https://api.botframework.attacker.example"
        ),
        "emulator issuer, forged": issuer.token(
            audience=APP_ID,
            service_url=SERVICE_URL,
            issuer="https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/",
            key=ATTACKER_KEY,
            extra={"ver": "1.0", "appid": APP_ID},
        ),
        "skill token, forged": issuer.token(
            audience=APP_ID,
            service_url=SERVICE_URL,
            issuer="https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/",
            key=ATTACKER_KEY,
            extra={"ver": "1.0", "appid": "some-other-bot"},
        ),
        "expired an hour ago": issuer.token(
            audience=APP_ID, service_url=SERVICE_URL, issued_ago=7200, lifetime=3600
        ),
        "not valid yet": issuer.token(audience=APP_ID, service_url=SERVICE_URL, issued_ago=-3600),
        "alg none": jwt.encode(
            {"iss": CHANNEL_ISSUER, "aud": APP_ID, "serviceurl": SERVICE_URL, "exp": 4102444800},
            None,
            algorithm="none",
            headers={"kid": issuer.kid},
        ),
        "HS256 keyed with the public key (algorithm confusion)": _hs256_with(public_pem, issuer),
        "no issuer claim": _without_claim(issuer, "iss"),
        "no serviceurl claim": _without_claim(issuer, "serviceurl"),
        "serviceurl claim names another service": issuer.token(
            audience=APP_ID, service_url="https://attacker.example/amer/"
        ),
        "not a JWT": "definitely-not-a-jwt",
        "three dots of garbage": "a.b.c",
    }


def _hs256_with(secret: bytes, issuer: Issuer) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    # PyJWT refuses to HMAC-sign with a PEM key, which is exactly what an attacker would do by hand.
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    payload = b64(
        json.dumps(
            {"iss": CHANNEL_ISSUER, "aud": APP_ID, "serviceurl": SERVICE_URL, "exp": 4102444800}
        ).encode()
    )
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _without_claim(issuer: Issuer, claim: str) -> str:
    token = issuer.token(audience=APP_ID, service_url=SERVICE_URL)
    claims = jwt.decode(token, options={"verify_signature": False})
    del claims[claim]
    return jwt.encode(claims, issuer.key, algorithm="RS256", headers={"kid": issuer.kid})


BAD_TOKEN_NAMES = list(_bad_tokens(Issuer(ATTACKER_KEY, kid="names-only")))


@pytest.mark.parametrize("case", BAD_TOKEN_NAMES)
async def test_a_bad_token_gets_401_and_no_turn(
    aiohttp_client: ClientFactory, endpoint: Endpoint, issuer: Issuer, case: str
) -> None:
    body = activity("event", service_url=SERVICE_URL)
    status = await _post(aiohttp_client, endpoint, body, _bad_tokens(issuer)[case])
    assert status == 401
    assert not await endpoint.reached_bot(body)


async def test_no_token_gets_401(aiohttp_client: ClientFactory, endpoint: Endpoint) -> None:
    body = activity("message", service_url=SERVICE_URL, text="sync help")
    assert await _post(aiohttp_client, endpoint, body, None) == 401
    client = await aiohttp_client(endpoint.app)
    for header in ("", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer x y"):
        response = await client.post("/api/messages", json=body, headers={"Authorization": header})
        assert response.status == 401, header
    assert not await endpoint.reached_bot(body)
    assert endpoint.commands == []


async def test_activity_service_url_must_match_the_token(
    aiohttp_client: ClientFactory, endpoint: Endpoint, issuer: Issuer
) -> None:
    """A token captured from one conversation cannot redirect the bot's replies elsewhere."""
    token = issuer.token(audience=APP_ID, service_url=SERVICE_URL)
    body = activity("event", service_url="https://attacker.example/amer/")
    assert await _post(aiohttp_client, endpoint, body, token) == 401
    assert not await endpoint.reached_bot(body)


async def test_a_channel_the_key_is_not_endorsed_for_gets_401(
    aiohttp_client: ClientFactory, endpoint: Endpoint, issuer: Issuer
) -> None:
    # Microsoft's keys list the channels each may sign for; ours says msteams only.
    body = activity("event", service_url=SERVICE_URL, channel="webchat")
    status = await _post(
        aiohttp_client, endpoint, body, issuer.token(audience=APP_ID, service_url=SERVICE_URL)
    )
    assert status == 401
    assert not await endpoint.reached_bot(body)


async def test_anonymous_mode_only_without_an_app_id_and_it_warns(
    aiohttp_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        anonymous = await build_endpoint(tmp_path / "anon")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "anonymous" in r.getMessage()]
    assert len(warnings) == 1
    assert "MICROSOFT_APP_ID" in warnings[0].getMessage()
    body = activity("event")
    assert await _post(aiohttp_client, anonymous, body, None) in {200, 201}
    assert await anonymous.reached_bot(body)
    await anonymous.store.close()

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        secured = await build_endpoint(
            tmp_path / "secured", microsoft_app_id=APP_ID, microsoft_app_password=APP_PASSWORD
        )
    assert not [r for r in caplog.records if "anonymous" in r.getMessage().lower()]
    assert await _post(aiohttp_client, secured, body, None) == 401
    assert not await secured.reached_bot(body)
    await secured.store.close()


async def test_signing_keys_unreachable_gets_503_not_a_turn(
    aiohttp_client: ClientFactory, tmp_path: Path, issuer: Issuer
) -> None:
    """Our side cannot check the token: the channel is told to retry (503), nothing runs unauthenticated."""
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}/nothing-here/.well-known/openidconfiguration"
    endpoint = await build_endpoint(
        tmp_path, microsoft_app_id=APP_ID, microsoft_app_password=APP_PASSWORD, bot_openid_metadata_url=dead
    )
    body = activity("event", service_url=SERVICE_URL)
    status = await _post(
        aiohttp_client, endpoint, body, issuer.token(audience=APP_ID, service_url=SERVICE_URL)
    )
    assert status == 503
    assert not await endpoint.reached_bot(body)
    await endpoint.store.close()


async def test_refusals_do_not_log_the_token(
    aiohttp_client: ClientFactory, endpoint: Endpoint, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = _bad_tokens(issuer)
    caplog.set_level(logging.DEBUG)
    for token in tokens.values():
        await _post(aiohttp_client, endpoint, activity("event", service_url=SERVICE_URL), token)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for token in tokens.values():
        if len(token) > 40:
            assert token.split(".")[1] not in logged
            assert token.split(".")[-1] not in logged or not token.split(".")[-1]


async def test_the_product_as_composed_by_app_py_checks_tokens_the_same_way(
    aiohttp_client: ClientFactory, tmp_path: Path, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    """Not only the parts: `app.create_app` wires the same validation (no anonymous fallback anywhere)."""
    with caplog.at_level(logging.WARNING):
        product = await build_product(
            tmp_path,
            microsoft_app_id=APP_ID,
            microsoft_app_password=APP_PASSWORD,
            bot_openid_metadata_url=issuer.metadata_url,
            token_encryption_keys=TokenCipher.generate_key(),
        )
    assert not [r for r in caplog.records if "anonymous" in r.getMessage().lower()]
    client = await aiohttp_client(product.app)

    async def post(body: dict[str, Any], token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = await client.post("/api/messages", json=body, headers=headers)
        await response.read()
        return response.status

    refused = activity("message", conversation="a:refused", service_url=SERVICE_URL, text="sync connect")
    assert await post(refused, None) == 401
    assert await post(refused, _bad_tokens(issuer)["forged signature (another key, our kid)"]) == 401
    assert await post(refused, _bad_tokens(issuer)["wrong audience (another bot)"]) == 401
    assert await post(refused, _bad_tokens(issuer)["serviceurl claim names another service"]) == 401
    assert not await product.reached_bot(refused)

    accepted = activity("event", conversation="a:accepted", service_url=SERVICE_URL)
    assert await post(accepted, issuer.token(audience=APP_ID, service_url=SERVICE_URL)) in {200, 201}
    assert await product.reached_bot(accepted)


async def test_the_product_without_an_app_id_says_it_is_anonymous_at_start(
    aiohttp_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        product = await build_product(tmp_path)
    warnings = [r for r in caplog.records if "anonymous mode" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    client = await aiohttp_client(product.app)
    body = activity("event", conversation="a:anon", service_url="http://127.0.0.1:9/")
    response = await client.post("/api/messages", json=body)
    assert response.status in {200, 201}
    assert await product.reached_bot(body)
