"""Token strings shaped like Xero's: RS256 JWT access and id tokens, opaque refresh tokens.

The sandbox looks every token up in its own tables, so a JWT's signature is never what makes it
valid here; it exists so clients that decode tokens (or verify id tokens against the JWKS) see the
real shape. One RSA key per process: generating one is the slow part.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://identity.xero.com"
RESOURCES_AUDIENCE = "https://identity.xero.com/resources"


@functools.cache
def _key() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_hex(20).upper()
    return private, kid


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks() -> dict[str, Any]:
    private, kid = _key()
    numbers = private.public_key().public_numbers()
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return {"keys": [{"kty": "RSA", "use": "sig", "kid": kid, "alg": "RS256", "e": _b64(e), "n": _b64(n)}]}


def sign(claims: dict[str, Any]) -> str:
    private, kid = _key()
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})


def at_hash(access_token: str) -> str:
    return _b64(hashlib.sha256(access_token.encode()).digest()[:16])


def access_token(*, now: float, lifetime: int, client_id: str, user_id: str, session_id: str,
                 auth_event_id: str, scopes: tuple[str, ...]) -> str:
    return sign({
        "nbf": int(now), "exp": int(now) + lifetime, "iss": ISSUER, "aud": RESOURCES_AUDIENCE,
        "client_id": client_id, "sub": user_id.replace("-", ""), "auth_time": int(now),
        "xero_userid": user_id, "global_session_id": session_id, "sid": session_id,
        "jti": secrets.token_hex(16).upper(), "authentication_event_id": auth_event_id,
        "scope": list(scopes),
    })


def id_token(*, now: float, client_id: str, user_id: str, session_id: str, email: str, first_name: str,
             last_name: str, access: str, nonce: str | None) -> str:
    claims: dict[str, Any] = {
        "nbf": int(now), "exp": int(now) + 300, "iss": ISSUER, "aud": client_id, "iat": int(now),
        "at_hash": at_hash(access), "sid": session_id, "sub": user_id.replace("-", ""),
        "auth_time": int(now), "xero_userid": user_id, "global_session_id": session_id,
        "preferred_username": email, "email": email, "given_name": first_name, "family_name": last_name,
        "name": f"{first_name} {last_name}", "amr": ["pwd"],
    }
    if nonce:
        claims["nonce"] = nonce
    return sign(claims)


def refresh_token() -> str:
    return secrets.token_hex(32)


def code() -> str:
    return secrets.token_hex(32)
