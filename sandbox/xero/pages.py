"""The login, consent and error pages of the sandbox's login.xero.com.

Plain, accessible HTML: every input has a label and the buttons are real <button>s named "Log in",
"Allow access" and "Cancel", so a person, an HTTP client following forms, or Playwright can drive them.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from sandbox.xero.seed import DemoUser

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f3f6f9;color:#1e3240;margin:0}
main{max-width:30rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input[type=email],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}
button{margin:1rem .5rem 0 0;padding:.6rem 1.2rem;border-radius:4px;border:1px solid #13b5ea;background:#13b5ea;color:#fff;font-size:1rem}
button[value=cancel]{background:#fff;color:#13b5ea}.error{color:#b00020}table{border-collapse:collapse;margin-top:1rem}
td,th{border:1px solid #ccd;padding:.3rem .6rem;text-align:left}fieldset{border:1px solid #ccd;margin-top:1rem}
.badge{font-size:.8rem;background:#ffe08a;padding:.1rem .4rem;border-radius:3px}
"""

SCOPE_TEXT = {
    "openid": "Verify your identity", "profile": "View your name", "email": "View your email address",
    "offline_access": "Keep access when you're not using the app (offline access)",
    "accounting.settings": "View and manage your organisation settings",
    "accounting.settings.read": "View your organisation settings (chart of accounts, tax rates, branding themes)",
}


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>'
            f'<body><main><p class="badge">Xero sandbox</p>{body}</main></body></html>')


def login_page(rid: str, users: Sequence[DemoUser], *, email: str = "", error: str | None = None) -> str:
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    rows = "".join(f"<tr><td>{escape(u.email)}</td><td><code>{escape(u.password)}</code></td></tr>" for u in users)
    body = (
        f"<h1>Log in to Xero</h1>{alert}"
        f'<form method="post" action="/identity/login">'
        f'<input type="hidden" name="rid" value="{escape(rid)}">'
        f'<label for="email">Email address</label>'
        f'<input id="email" name="email" type="email" autocomplete="username" required value="{escape(email)}">'
        f'<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" autocomplete="current-password" required>'
        f'<button type="submit">Log in</button></form>'
        f"<h2>Demo accounts</h2><p>Anyone may sign in with these.</p>"
        f"<table><thead><tr><th>Email</th><th>Password</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return _page("Log in | Xero", body)


def consent_page(rid: str, app_name: str, user: DemoUser, scopes: Sequence[str],
                 orgs: Sequence[tuple[str, str, bool]], *, error: str | None = None) -> str:
    """`orgs` are (tenant id, name, checked)."""
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    items = "".join(f"<li>{escape(SCOPE_TEXT.get(s, s))}</li>" for s in scopes)
    if orgs:
        boxes = "".join(
            f'<div><input type="checkbox" id="org-{escape(tid)}" name="tenant" value="{escape(tid)}"'
            f'{" checked" if checked else ""}><label for="org-{escape(tid)}" style="display:inline">{escape(name)}</label></div>'
            for tid, name, checked in orgs)
        chooser = f"<fieldset><legend>Organisations to connect</legend>{boxes}</fieldset>"
    else:
        chooser = "<p>You don't have access to any organisations.</p>"
    body = (
        f"<h1>{escape(app_name)} wants access to your Xero data</h1>{alert}"
        f"<p>Signed in as <strong>{escape(user.email)}</strong>. "
        f'<a href="/identity/logout?rid={escape(rid)}">Not you?</a></p>'
        f"<p>This app will be able to:</p><ul>{items}</ul>"
        f'<form method="post" action="/identity/consent"><input type="hidden" name="rid" value="{escape(rid)}">'
        f"{chooser}"
        f'<button type="submit" name="action" value="allow">Allow access</button>'
        f'<button type="submit" name="action" value="cancel">Cancel</button></form>'
    )
    return _page("Allow access | Xero", body)


def error_page(error: str, description: str) -> str:
    body = (f"<h1>Sorry, something went wrong</h1>"
            f'<p role="alert">Error: <code>{escape(error)}</code></p><p>{escape(description)}</p>'
            f"<p>Go back to the app and try connecting again.</p>")
    return _page("Error | Xero", body)
