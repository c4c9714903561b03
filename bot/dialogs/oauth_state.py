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

Every link and flow state also leaves a marker (`seen:...`, no secrets) that outlives it, so a late or
second use is told apart from garbage: `expired_state`, `replayed_state`, `invalid_state`. A link's
marker keeps its binding (links are made by the bot, one per sign-in step); a flow's marker, made by
every opening of a link, is small (its link, its expiry, used, reported) and finds the binding through
the link's marker. A replay or an expiry is reported to the chat once (`StateError.binding` is set the
first time only): reloading a used callback URL a thousand times posts one message.

Each flow is bound to the browser that opened the link: `/start` sets a short-lived cookie whose hash
the flow keeps (`Binding.browser`), and the callback takes the flow only with that cookie
(`other_browser`, the flow left as it was for its own browser). A link opened by a second browser while
a sign-in through it is under way is refused (`signin_busy`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.crypto import TokenCipher
from bot.dialogs.failures import SigninFailure
from bot.dialogs.model import Provider
from bot.errors import OAuthFlowError, StoreError
from bot.storage.base import Counters, OAuthStateStore, utcnow


class StateStore(OAuthStateStore, Counters, Protocol):
    """What the sign-in states need from the store."""

STATE_TTL_SECONDS = 600.0  # 10 minutes, for links, flow states, pending sign-ins and codes
MARKER_TTL_SECONDS = 24 * 3600.0
MAX_CODE_ATTEMPTS = 5
# How often one link may be opened (each opening writes a flow state and its marker): a person retrying
# needs two or three; the cap bounds what a flood of GETs of one link can make the store keep.
MAX_STARTS_PER_LINK = 5
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~]{16,200}")
CODE_PATTERN = re.compile(r"\s*(\d{3})[-\s]?(\d{3})\s*")

class StateError(OAuthFlowError):
    """A link or flow state that cannot be used; `binding` names the setup when it is known."""

    reason: SigninFailure

    def __init__(self, reason: SigninFailure, binding: Binding | None = None) -> None:
        # The words are the edge's (bot.dialogs.wording); the exception carries the name.
        super().__init__(reason, f"sign-in state refused: {reason.value}")
        self.reason = reason
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
    # sha256 of the sign-in cookie of the browser that opened the link ("" on a link itself).
    browser: str = ""


def valid_token(token: str | None) -> bool:
    return bool(token) and _TOKEN.fullmatch(token or "") is not None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def browser_hash(cookie: str | None) -> str:
    """What a flow keeps of its browser's cookie (the cookie itself is never stored)."""
    return hashlib.sha256(f"signin-browser:{cookie}".encode()).hexdigest() if valid_token(cookie) else ""


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
        store: StateStore,
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

    async def claim_link(self, binding: Binding, browser: str) -> None:
        """Let `browser` (a `browser_hash`) start a sign-in through this link, or raise StateError:
        `signin_busy` while another browser's sign-in through it is under way, `too_many` past the cap.

        The claim lives as long as a flow state; the same browser may open the link again. Counted
        before anything is written, so a refused opening writes only its counter."""
        opened = await self._store.incr_counter(f"oauth-start:{binding.link}", self.ttl_seconds)
        if opened > MAX_STARTS_PER_LINK:
            raise StateError(SigninFailure.TOO_MANY)
        key = f"busy:{binding.link}"
        holder = await self._store.peek_state(key)
        if holder is not None and not hmac.compare_digest(str(holder.get("browser", "")), browser):
            raise StateError(SigninFailure.SIGNIN_BUSY)
        await self._store.put_state(key, {"browser": browser}, self.ttl_seconds)

    # -- flow states ---------------------------------------------------------------------------------

    async def begin_flow(self, binding: Binding, secret: dict[str, Any], state: str | None = None) -> str:
        """Store a provider flow's secret under its `state` (ours, or MSAL's own); returns the state."""
        state = state or new_token()
        if not valid_token(state):
            raise StateError(SigninFailure.INVALID_STATE)
        await self._put("flow", state, binding, secret)
        return state

    async def take_flow(self, state: str, browser: str) -> tuple[Binding, dict[str, Any]]:
        """Consume the flow state, if `browser` (a `browser_hash`) is the one that started it.

        Raises StateError: invalid_state, expired_state, replayed_state, other_browser (the flow is left
        for its own browser). The first report of an expiry or a replay carries the binding, so the
        chat can be told once."""
        if valid_token(state):
            entry = await self._store.peek_state(f"flow:{state}")
            if entry is not None:
                owner = self._binding(entry).browser
                if not owner or not browser or not hmac.compare_digest(owner, browser):
                    raise StateError(SigninFailure.OTHER_BROWSER)
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
        marker: dict[str, Any] = {"expires_at": self.expires_at().isoformat(), "used": False}
        if kind == "link":
            marker["binding"] = binding.model_dump(mode="json")
        else:
            marker["link"] = binding.link  # small: the binding is found through the link's marker
        await self._store.put_state(f"seen:{kind}:{token}", marker, self._marker_ttl)

    async def _read(self, kind: str, token: str, *, take: bool) -> tuple[Binding, dict[str, Any]]:
        if not valid_token(token):
            raise StateError(SigninFailure.INVALID_STATE)
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
            raise StateError(SigninFailure.INVALID_STATE)
        binding = await self._marker_binding(marker)
        try:
            expired = datetime.fromisoformat(str(marker.get("expires_at"))) <= self._now()
        except ValueError:
            expired = True
        # Issued, not expired, yet gone: someone took it first. Either way the chat can be told, once.
        reason = SigninFailure.EXPIRED_STATE if expired and not marker.get("used") else SigninFailure.REPLAYED_STATE
        if marker.get("reported"):
            raise StateError(reason)
        await self._store.put_state(f"seen:{key}", {**marker, "reported": True}, self._marker_ttl)
        raise StateError(reason, binding)

    async def _marker_binding(self, marker: dict[str, Any]) -> Binding:
        if "binding" in marker:
            return self._binding(marker)
        link = marker.get("link")
        if not isinstance(link, str) or not valid_token(link):
            raise StateError(SigninFailure.INVALID_STATE)
        link_marker = await self._store.peek_state(f"seen:link:{link}")
        if link_marker is None:
            raise StateError(SigninFailure.INVALID_STATE)
        return self._binding(link_marker)

    def _binding(self, entry: dict[str, Any]) -> Binding:
        try:
            return Binding.model_validate(entry.get("binding"))
        except ValidationError:
            raise StateError(SigninFailure.INVALID_STATE) from None

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
