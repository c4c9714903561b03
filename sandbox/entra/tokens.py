"""Signed tokens: the sandbox signing key, JWKS, access tokens, id tokens and their validation.

Access tokens for resources that take v1 tokens (Dynamics CRM) look like Entra's v1 tokens (`ver` 1.0,
`upn`, `unique_name`, `scp`, `appid`); id tokens are v2 (`ver` 2.0, `preferred_username`, pairwise `sub`).
All are RS256 JWTs signed by one RSA key published at `/{tenant}/discovery/v2.0/keys`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from sandbox.entra.directory import AppRegistration, ResourceApp, User, sandbox_uuid

ALGORITHM = "RS256"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def client_info(user: User) -> str:
    """What Entra returns as `client_info`: base64url JSON of the user's object and home tenant ids."""
    return b64url(json.dumps({"uid": user.oid, "utid": user.tenant_id}).encode())


def pairwise_subject(user: User, audience: str) -> str:
    # Entra's `sub` is unique per user and application: never the same across apps.
    digest = hashlib.sha256(f"{user.oid}|{audience}".encode()).digest()
    return b64url(digest)[:43]


@dataclass(frozen=True)
class Claims:
    """The parts of a validated access token a resource server needs."""

    audience: str
    tenant_id: str
    object_id: str
    upn: str
    name: str
    scopes: tuple[str, ...]
    app_id: str
    issued_at: int
    expires_at: int
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TokenCheck:
    claims: Claims | None
    problem: str = ""


class SigningKey:
    def __init__(self) -> None:
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        modulus = str(self._private.public_key().public_numbers().n).encode()
        self.kid = b64url(hashlib.sha256(modulus).digest())[:27]

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._private.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": [jwk]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})

    def decode(self, token: str) -> dict[str, Any] | None:
        """Signature-checked claims, or None. Time and audience checks are the caller's (sandbox clock)."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.kid or header.get("alg") != ALGORITHM:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                self._private.public_key(),
                algorithms=[ALGORITHM],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        return claims


def _opaque_id() -> str:
    return b64url(secrets.token_bytes(16))


def access_token_claims(
    *,
    user: User,
    app: AppRegistration,
    resource: ResourceApp,
    audience: str,
    scopes: tuple[str, ...],
    issuer_base: str,
    now: int,
    lifetime: int,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "acr": "1",
        "aio": _opaque_id(),
        "amr": ["pwd"],
        "appidacr": "1",
        "family_name": user.surname,
        "given_name": user.given_name,
        "idtyp": "user",
        "ipaddr": "127.0.0.1",
        "name": user.display_name,
        "oid": user.oid,
        "puid": hashlib.sha256(user.oid.encode()).hexdigest()[:16].upper(),
        "rh": _opaque_id(),
        "scp": " ".join(scopes),
        "sub": pairwise_subject(user, audience),
        "tid": user.tenant_id,
        "uti": _opaque_id(),
    }
    if resource.accepts_v1_tokens:
        claims.update({
            "iss": f"{issuer_base}/{user.tenant_id}/",
            "appid": app.client_id,
            "unique_name": user.upn,
            "upn": user.upn,
            "ver": "1.0",
        })
    else:
        claims.update({
            "iss": f"{issuer_base}/{user.tenant_id}/v2.0",
            "azp": app.client_id,
            "azpacr": "1",
            "preferred_username": user.upn,
            "upn": user.upn,
            "ver": "2.0",
        })
    return claims


def id_token_claims(
    *,
    user: User,
    app: AppRegistration,
    issuer_base: str,
    now: int,
    nonce: str | None,
    auth_time: int | None,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "aud": app.client_id,
        "iss": f"{issuer_base}/{user.tenant_id}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": user.display_name,
        "oid": user.oid,
        "preferred_username": user.upn,
        "rh": _opaque_id(),
        "sid": sandbox_uuid(f"session:{user.upn}"),
        "sub": pairwise_subject(user, app.client_id),
        "tid": user.tenant_id,
        "uti": _opaque_id(),
        "ver": "2.0",
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if auth_time is not None:
        claims["auth_time"] = auth_time
    return claims


def claims_from(raw: dict[str, Any]) -> Claims:
    return Claims(
        audience=str(raw.get("aud", "")),
        tenant_id=str(raw.get("tid", "")),
        object_id=str(raw.get("oid", "")),
        upn=str(raw.get("upn", raw.get("preferred_username", ""))),
        name=str(raw.get("name", "")),
        scopes=tuple(str(raw.get("scp", "")).split()),
        app_id=str(raw.get("appid", raw.get("azp", ""))),
        issued_at=int(raw.get("iat", 0)),
        expires_at=int(raw.get("exp", 0)),
        raw=raw,
    )


def same_audience(token_audience: str, expected: str) -> bool:
    """Resource servers accept their URL with or without the trailing slash, host case-insensitively."""
    return token_audience.rstrip("/").lower() == expected.rstrip("/").lower()
