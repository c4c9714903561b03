"""The pages a browser sees at the end of our sign-in flows.

After a successful callback the page shows a short one-time code and, when it runs in Teams' sign-in
popup, hands that code to Teams with `microsoftTeams.authentication.notifySuccess(code)`: Teams then
sends the bot a `signin/verifyState` invoke from the Teams user, which proves the browser user is them.
A browser that is not Teams' popup (the Agents Playground, a desktop browser) cannot do that, so the
person types the code into the chat instead. Either way the code is checked against the Teams user.

Every page is self-contained, forbids framing and caching, and sends no referrer (the callback's URL
carried a code). Text from providers is escaped.
"""

from __future__ import annotations

import json
import secrets
from html import escape

from aiohttp import web

TEAMS_JS = "https://res.cdn.office.net/teams-js/2.34.0/js/MicrosoftTeams.min.js"

_STYLE = """
body{font-family:"Segoe UI",system-ui,sans-serif;background:#f5f5f5;color:#242424;margin:0}
main{max-width:32rem;margin:3rem auto;background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin-top:0}.code{font-size:2.4rem;letter-spacing:.2rem;font-weight:700;margin:1rem 0;
font-family:Consolas,monospace}.muted{color:#616161;font-size:.9rem}.bad{color:#c4314b}
"""


def _headers(nonce: str | None = None) -> dict[str, str]:
    script = f"script-src 'nonce-{nonce}' {TEAMS_JS}; connect-src 'none'; " if nonce else "script-src 'none'; "
    return {
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": (
            f"default-src 'none'; {script}style-src 'unsafe-inline'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'none'"
        ),
    }


def _page(
    title: str,
    body: str,
    *,
    status: int,
    nonce: str | None = None,
    script: str = "",
    headers: dict[str, str] | None = None,
) -> web.Response:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main>{script}</body></html>"
    )
    return web.Response(
        text=html, status=status, content_type="text/html", headers={**_headers(nonce), **(headers or {})}
    )


def code_page(provider_label: str, code: str, account: str = "") -> web.Response:
    """Signed in: the one-time code to type in Teams, also handed to Teams' popup when there is one."""
    nonce = secrets.token_urlsafe(16)
    who = f"<p class=\"muted\">Signed in as {escape(account)}.</p>" if account else ""
    body = (
        f"<h1>Almost done: confirm it's you in Teams</h1>{who}"
        f"<p>You signed in to {escape(provider_label)}. To finish, type this code in the Teams chat where you "
        "started the setup (or into the setup card's <em>Verification code</em> box):</p>"
        f'<p class="code" id="code" aria-label="Verification code">{escape(code)}</p>'
        "<p class=\"muted\">The code works once, only for you, for 10 minutes. Don't share it with anyone: "
        "it connects this sign-in to your setup. If Teams opened this page in its sign-in window, it "
        "confirms by itself and closes the window.</p>"
    )
    script = (
        f'<script nonce="{nonce}" src="{TEAMS_JS}" crossorigin="anonymous"></script>'
        f'<script nonce="{nonce}">'
        "(function(){var code=" + json.dumps(code) + ";"
        "if(typeof microsoftTeams==='undefined'){return;}"
        "microsoftTeams.app.initialize().then(function(){"
        "microsoftTeams.authentication.notifySuccess(code);}).catch(function(){});})();"
        "</script>"
    )
    return _page("Confirm in Teams", body, status=200, nonce=nonce, script=script)


def done_page(provider_label: str, account: str = "") -> web.Response:
    """Signed in and already verified (the account is the Teams user's own)."""
    who = f" as {escape(account)}" if account else ""
    body = (
        f"<h1>Signed in to {escape(provider_label)}</h1>"
        f"<p>You signed in{who}. You can close this window and go back to Teams: the setup carries on there.</p>"
    )
    return _page("Signed in", body, status=200)


def error_page(title: str, message: str, *, status: int = 400, headers: dict[str, str] | None = None) -> web.Response:
    body = (
        f'<h1 class="bad">{escape(title)}</h1><p>{escape(message)}</p>'
        "<p class=\"muted\">Nothing was saved from this sign-in. You can close this window.</p>"
    )
    return _page(title, body, status=status, headers=headers)
