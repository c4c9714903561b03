"""A local OpenID issuer for Bot Framework tokens: metadata + JWKS served over HTTP, tokens signed here.

botbuilder fetches the metadata and keys with the blocking `requests` library from inside the event
loop, so the server runs on its own thread and loop (on the test's loop it could never answer). Each
issuer serves under a random path: botbuilder caches keys per metadata URL for a day, process-wide, and
a reused ephemeral port must not hand a later test this issuer's keys.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CHANNEL_ISSUER = "https://api.botframework.com"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issuer:
    """Signs channel tokens with `key`; the JWKS it serves holds only `key`'s public half."""

    key: rsa.RSAPrivateKey
    kid: str
    metadata_url: str = ""
    fetches: list[str] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]})
        return {"keys": [jwk]}

    def token(
        self,
        *,
        audience: str,
        service_url: str,
        issuer: str = CHANNEL_ISSUER,
        lifetime: float = 3600,
        issued_ago: float = 60,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        algorithm: str = "RS256",
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A channel token as the Bot Connector service makes them (claims per the Bot Framework docs)."""
        now = time.time()
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": int(now - issued_ago),
            "iat": int(now - issued_ago),
            "exp": int(now - issued_ago + lifetime),
        }
        claims.update(extra or {})
        signing_key: Any = key or self.key
        return jwt.encode(claims, signing_key, algorithm=algorithm, headers={"kid": kid or self.kid})


@contextmanager
def serve_issuer(key: rsa.RSAPrivateKey | None = None) -> Iterator[Issuer]:
    issuer = Issuer(key or new_key(), kid=f"kid-{uuid.uuid4().hex[:8]}")
    prefix = f"/{uuid.uuid4().hex}"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def metadata(request: web.Request) -> web.Response:
        issuer.fetches.append(request.path)
        base = f"http://{request.host}{prefix}"
        return web.json_response(
            {
                "issuer": CHANNEL_ISSUER,
                "authorization_endpoint": "https://invalid.example/authorize",
                "jwks_uri": f"{base}/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def keys(request: web.Request) -> web.Response:
        issuer.fetches.append(request.path)
        return web.json_response(issuer.jwks())

    async def start() -> None:
        app = web.Application()
        app.router.add_get(f"{prefix}/.well-known/openidconfiguration", metadata)
        app.router.add_get(f"{prefix}/keys", keys)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        state["runner"] = runner
        issuer.metadata_url = f"http://127.0.0.1:{port}{prefix}/.well-known/openidconfiguration"
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="openid-issuer", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the OpenID issuer did not start")
    try:
        yield issuer
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
