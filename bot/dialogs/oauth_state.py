"""OAuth state for our own sign-in flows: links, provider states, pending sign-ins, verification codes.

Three kinds of entries, all in the store's OAuthStateStore with a time to live, none in memory:

- a **link** (`link:<token>`): what the card's sign-in button opens (`/oauth/<provider>/start?link=`).
  Bound to the Teams tenant, user, conversation, setup and provider. Opening it does not consume it
  (the user may open it twice); a new link for the same setup makes it stale (the setup remembers the
  current one).
- a **flow state** (`flow:<state>`): the `state` sent to the provider, made when the link is opened,
  holding the PKCE verifier (Xero) or MSAL's flow (Dynamics) encrypted. Single use: the callback takes it.
- a **pending sign-in** (`pending:<setup>:<provider>`): the tokens a callback received, encrypted,
  until the Teams user proves the browser login was theirs (the code, or `signin/verifyState`).

Every link and flow state also leaves a small marker (`seen:...`, no secrets) that outlives it, so a
late or second use is told apart from garbage: `expired_state`, `replayed_state`, `invalid_state`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.crypto import TokenCipher
from bot.dialogs.model import Provider
from bot.errors import OAuthFlowError, StoreError
from bot.storage.base import OAuthStateStore, utcnow

STATE_TTL_SECONDS = 600.0  # 10 minutes, for links, flow states, pending sign-ins and codes
MARKER_TTL_SECONDS = 24 * 3600.0
MAX_CODE_ATTEMPTS = 5
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~]{16,200}")
CODE_PATTERN = re.compile(r"\s*(\d{3})[-\s]?(\d{3})\s*")

MESSAGES: dict[str, str] = {
    "invalid_state": "This sign-in link isn't valid. Go back to Teams and start the sign-in from the setup card.",
    "expired_state": "This sign-in link has expired (they last 10 minutes). Go back to Teams and choose "
    "Try again on the setup card.",
    "replayed_state": "This sign-in was already used. Nothing more was done. If you still need to sign in, "
    "go back to Teams and choose Try again on the setup card.",
    "link_replaced": "A newer sign-in link replaced this one. Use the button on the setup card in Teams.",
    "setup_gone": "This setup was finished or cancelled, so the sign-in was not used and nothing was kept.",
    "access_denied": "You cancelled the sign-in or didn't allow access, so nothing was connected.",
}


def flow_message(reason: str, provider: Provider) -> str:
    return MESSAGES.get(reason, f"{provider.label} reported a problem with the sign-in.")


class StateError(OAuthFlowError):
    """A link or flow state that cannot be used; `binding` names the setup when it is known."""

    def __init__(self, reason: str, binding: Binding | None = None) -> None:
        super().__init__(reason, MESSAGES[reason])
        self.binding = binding


class Binding(BaseModel):
    """Who and where a link or flow belongs to. No secrets: it is kept in the markers too."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    provider: Provider
    setup_id: str
    link: str
    tenant_id: str
    user_id: str
    conversation_key: str
    reference: dict[str, Any]


def valid_token(token: str | None) -> bool:
    return bool(token) and _TOKEN.fullmatch(token or "") is not None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_code() -> str:
    """A short code a person can read off a page and type: 6 digits shown as 123-456."""
    digits = f"{secrets.randbelow(1_000_000):06d}"
    return f"{digits[:3]}-{digits[3:]}"


def normalise_code(text: str) -> str | None:
    """The 6 digits of a typed code ("123-456", "123 456", "123456"), or None if it is not one."""
    match = CODE_PATTERN.fullmatch(text)
    return match.group(1) + match.group(2) if match else None


def code_hash(setup_id: str, code: str) -> str:
    digits = normalise_code(code) or code
    return hashlib.sha256(f"{setup_id}:{digits}".encode()).hexdigest()


def code_matches(setup_id: str, code: str, expected_hash: str) -> bool:
    return hmac.compare_digest(code_hash(setup_id, code), expected_hash)


class OAuthStates:
    def __init__(
        self,
        store: OAuthStateStore,
        cipher: TokenCipher,
        *,
        ttl_seconds: float = STATE_TTL_SECONDS,
        marker_ttl_seconds: float = MARKER_TTL_SECONDS,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self.ttl_seconds = ttl_seconds
        self._marker_ttl = max(marker_ttl_seconds, ttl_seconds)
        self._now = now

    # -- links ---------------------------------------------------------------------------------------

    async def issue_link(self, binding: Binding) -> None:
        """Store the link named by `binding.link` (the caller made it with `new_token`)."""
        await self._put("link", binding.link, binding, {})

    async def open_link(self, token: str) -> Binding:
        """The link's binding, without consuming it. Raises StateError (expired, invalid)."""
        binding, _ = await self._read("link", token, take=False)
        return binding

    # -- flow states ---------------------------------------------------------------------------------

    async def begin_flow(self, binding: Binding, secret: dict[str, Any], state: str | None = None) -> str:
        """Store a provider flow's secret under its `state` (ours, or MSAL's own); returns the state."""
        state = state or new_token()
        if not valid_token(state):
            raise StateError("invalid_state")
        await self._put("flow", state, binding, secret)
        return state

    async def take_flow(self, state: str) -> tuple[Binding, dict[str, Any]]:
        """Consume the flow state. Raises StateError: invalid_state, expired_state, replayed_state.

        On expiry and replay the error carries the binding so the chat can be told."""
        return await self._read("flow", state, take=True)

    # -- pending sign-ins ----------------------------------------------------------------------------

    async def put_pending(self, setup_id: str, provider: Provider, secret: dict[str, Any]) -> None:
        blob = self._cipher.encrypt_json(secret).decode("ascii")
        await self._store.put_state(self._pending_key(setup_id, provider), {"blob": blob}, self.ttl_seconds)

    async def take_pending(self, setup_id: str, provider: Provider) -> dict[str, Any] | None:
        """The pending sign-in's secret, consumed; None if there is none (expired or never made)."""
        entry = await self._store.take_state(self._pending_key(setup_id, provider))
        return self._open(entry)

    async def discard_pending(self, setup_id: str) -> None:
        for provider in Provider:
            await self._store.take_state(self._pending_key(setup_id, provider))

    @staticmethod
    def _pending_key(setup_id: str, provider: Provider) -> str:
        return f"pending:{setup_id}:{provider.value}"

    def expires_at(self) -> datetime:
        return self._now() + timedelta(seconds=self.ttl_seconds)

    # -- plumbing ------------------------------------------------------------------------------------

    async def _put(self, kind: str, token: str, binding: Binding, secret: dict[str, Any]) -> None:
        payload: dict[str, Any] = {"binding": binding.model_dump(mode="json")}
        if secret:
            payload["blob"] = self._cipher.encrypt_json(secret).decode("ascii")
        await self._store.put_state(f"{kind}:{token}", payload, self.ttl_seconds)
        marker = {
            "binding": binding.model_dump(mode="json"),
            "expires_at": self.expires_at().isoformat(),
            "used": False,
        }
        await self._store.put_state(f"seen:{kind}:{token}", marker, self._marker_ttl)

    async def _read(self, kind: str, token: str, *, take: bool) -> tuple[Binding, dict[str, Any]]:
        if not valid_token(token):
            raise StateError("invalid_state")
        key = f"{kind}:{token}"
        entry = await (self._store.take_state(key) if take else self._store.peek_state(key))
        if entry is not None:
            binding = self._binding(entry)
            if take:
                marker = await self._store.peek_state(f"seen:{key}")
                if marker is not None:
                    await self._store.put_state(f"seen:{key}", {**marker, "used": True}, self._marker_ttl)
            return binding, self._open(entry) or {}
        marker = await self._store.peek_state(f"seen:{key}")
        if marker is None:
            raise StateError("invalid_state")
        binding = self._binding(marker)
        try:
            expired = datetime.fromisoformat(str(marker.get("expires_at"))) <= self._now()
        except ValueError:
            expired = True
        # Issued, not expired, yet gone: someone took it first. Either way the chat can be told.
        raise StateError("expired_state" if expired and not marker.get("used") else "replayed_state", binding)

    def _binding(self, entry: dict[str, Any]) -> Binding:
        try:
            return Binding.model_validate(entry.get("binding"))
        except ValidationError:
            raise StateError("invalid_state") from None

    def _open(self, entry: dict[str, Any] | None) -> dict[str, Any] | None:
        if entry is None:
            return None
        blob = entry.get("blob")
        if not isinstance(blob, str):
            return None
        try:
            opened = self._cipher.decrypt_json(blob.encode("ascii"))
        except (StoreError, UnicodeEncodeError):
            return None
        return opened if isinstance(opened, dict) else None
