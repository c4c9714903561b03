"""A browser for the sandbox's Xero identity pages, driven over HTTP: it reads the pages' forms and
presses their buttons by label, as a person would; and the authorize / token calls the tests make."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from sandbox.xero import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_EMAIL,
    DEMO_PASSWORD,
)

REDIRECT = "http://localhost:3978/oauth/xero/callback"
SCOPE = "openid profile email offline_access accounting.settings.read"
BASIC = httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)


@dataclass
class Form:
    action: str
    fields: list[tuple[str, str, str, bool]] = field(default_factory=list)  # name, value, type, checked
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # label, name, value
    labels: dict[str, str] = field(default_factory=dict)  # input id -> label text


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: dict[str, str] | None = None
        self._label_for: str | None = None
        self._ids: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", "")))
        elif tag == "input" and self.forms:
            self.forms[-1].fields.append((a.get("name", ""), a.get("value", ""), a.get("type", "text"),
                                          "checked" in a))
            self._ids[a.get("id", "")] = a.get("name", "") + "=" + a.get("value", "")
        elif tag == "button":
            self._button = {**a, "label": ""}
        elif tag == "label":
            self._label_for = a.get("for")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._button is not None:
            self._button["label"] += data
        if self._label_for is not None and self.forms:
            self.forms[-1].labels[self._label_for] = self.forms[-1].labels.get(self._label_for, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            b = self._button
            self.forms[-1].buttons.append((b["label"].strip(), b.get("name", ""), b.get("value", "")))
            self._button = None
        elif tag == "label":
            self._label_for = None


def parse_page(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    return parser


async def press(client: httpx.AsyncClient, page: httpx.Response, button: str, *, fill: dict[str, str] | None = None,
                check: set[str] | None = None) -> httpx.Response:
    """Fill text inputs by label, set checkboxes by label (None keeps them), press the button by its text."""
    parsed = parse_page(page.text)
    form = next(f for f in parsed.forms if any(label == button for label, _, _ in f.buttons))
    by_label = {text.strip(): input_id for input_id, text in form.labels.items()}
    fill_by_name: dict[str, str] = {}
    for label, value in (fill or {}).items():
        name = _name_for(page.text, by_label[label])  # a field without a label fails here
        assert name, label
        fill_by_name[name] = value
    checked_values = None if check is None else {_value_for(page.text, by_label[label]) for label in check}
    data: list[tuple[str, str]] = []
    for name, value, kind, checked in form.fields:
        if kind == "checkbox":
            if (checked if checked_values is None else value in checked_values):
                data.append((name, value))
        elif name:
            data.append((name, fill_by_name.get(name, value)))
    _, name, value = next(b for b in form.buttons if b[0] == button)
    if name:
        data.append((name, value))
    url = urljoin(str(page.url), form.action)
    return await client.post(url, content=urlencode(data),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})


def _name_for(html: str, input_id: str) -> str | None:
    m = re.search(rf'<input[^>]*id="{re.escape(input_id)}"[^>]*name="([^"]*)"', html)
    return m.group(1) if m else None


def _value_for(html: str, input_id: str) -> str:
    m = re.search(rf'<input[^>]*id="{re.escape(input_id)}"[^>]*value="([^"]*)"', html)
    assert m, input_id
    return m.group(1)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(challenge: str | None = None, **over: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPE,
              "state": "st-123"}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(over)
    return params


async def follow(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    assert response.status_code in (302, 303), response.text
    return await client.get(urljoin(str(response.url), response.headers["Location"]))


async def sign_in_and_consent(
    client: httpx.AsyncClient, *, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD,
    challenge: str | None = None, check: set[str] | None = None, **params: str,
) -> dict[str, list[str]]:
    """The whole browser part; returns the query the app's redirect URI receives."""
    page = await client.get("/identity/connect/authorize", params=authorize_params(challenge, **params))
    assert page.status_code == 200, page.text
    if "Log in" in [b[0] for f in parse_page(page.text).forms for b in f.buttons]:
        page = await follow(client, await press(client, page, "Log in", fill={"Email address": email,
                                                                            "Password": password}))
    consent = page
    assert consent.status_code == 200
    back = await press(client, consent, "Allow access", check=check)
    assert back.status_code == 302
    location = back.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def exchange(client: httpx.AsyncClient, code: str, verifier: str | None = None) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier:
        form["code_verifier"] = verifier
    return await client.post("/connect/token", data=form, auth=BASIC)


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/connect/token", data={"grant_type": "refresh_token", "refresh_token": token},
                             auth=BASIC)
