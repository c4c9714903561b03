"""The HTML pages of the sandbox sign-in: account picker and password, consent, errors, form_post.

Real, labelled form controls so a browser test can use `get_by_label("Username")`, `get_by_label("Password")`
and `get_by_role("button", name="Sign in" | "Accept" | "Cancel")`. The seeded accounts and their passwords
are listed on the login page on purpose: this is a sandbox.
"""

from __future__ import annotations

from html import escape

from sandbox.entra.directory import USERS, tenant_by_id

_STYLE = """
body { font-family: "Segoe UI", system-ui, sans-serif; background: #f2f2f2; margin: 0; }
main { max-width: 560px; margin: 48px auto; background: #fff; padding: 32px 40px; box-shadow: 0 2px 6px #0003; }
h1 { font-size: 1.5rem; font-weight: 600; margin: 0 0 8px; }
label { display: block; margin-top: 16px; font-weight: 600; }
input[type=text], input[type=password] { width: 100%; padding: 6px 0; border: 0; border-bottom: 1px solid #666;
  font-size: 1rem; }
button { margin-top: 24px; margin-right: 8px; padding: 6px 24px; font-size: 1rem; border: 1px solid #0067b8; }
button.primary { background: #0067b8; color: #fff; }
button.secondary { background: #fff; color: #000; border-color: #ccc; }
table { border-collapse: collapse; margin-top: 24px; font-size: 0.85rem; width: 100%; }
th, td { text-align: left; border-bottom: 1px solid #ddd; padding: 4px 6px; vertical-align: top; }
.error { color: #e81123; margin-top: 12px; }
.muted { color: #555; font-size: 0.9rem; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def login_page(*, action: str, ctx: str, app_name: str, login_hint: str = "", error: str = "") -> str:
    rows = []
    for user in USERS:
        tenant = tenant_by_id(user.tenant_id)
        rows.append(
            "<tr>"
            f"<td>{escape(user.upn)}</td><td><code>{escape(user.password)}</code></td>"
            f"<td>{escape(tenant.name if tenant else user.tenant_id)}</td><td>{escape(user.note)}</td>"
            "</tr>"
        )
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = f"""
<h1>Sign in</h1>
<p class="muted">to continue to {escape(app_name)}</p>
{alert}
<form method="post" action="{escape(action)}">
  <input type="hidden" name="ctx" value="{escape(ctx)}">
  <label for="username">Username</label>
  <input type="text" id="username" name="username" autocomplete="username" value="{escape(login_hint)}" required>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required>
  <button type="submit" class="primary">Sign in</button>
</form>
<table aria-label="Sandbox accounts">
  <caption class="muted">Sandbox accounts (test data, not real people)</caption>
  <thead><tr><th>Account</th><th>Password</th><th>Tenant</th><th>What it shows</th></tr></thead>
  <tbody>{"".join(rows)}</tbody>
</table>
"""
    return _page("Sign in to your account", body)


def consent_page(*, action: str, ctx: str, app_name: str, publisher: str, upn: str, permissions: list[str]) -> str:
    items = "".join(f"<li>{escape(permission)}</li>" for permission in permissions)
    body = f"""
<p class="muted">{escape(upn)}</p>
<h1>Permissions requested</h1>
<p><strong>{escape(app_name)}</strong><br><span class="muted">{escape(publisher)}</span></p>
<p>This app would like to:</p>
<ul>{items}</ul>
<p class="muted">Accepting these permissions means that you allow this app to use your data as specified in
its terms of service and privacy statement.</p>
<form method="post" action="{escape(action)}">
  <input type="hidden" name="ctx" value="{escape(ctx)}">
  <button type="submit" name="action" value="cancel" class="secondary">Cancel</button>
  <button type="submit" name="action" value="accept" class="primary">Accept</button>
</form>
"""
    return _page("Permissions requested", body)


def error_page(*, description: str, code: int) -> str:
    body = f"""
<h1>Sorry, but we're having trouble signing you in.</h1>
<p role="alert">AADSTS{code}: {escape(description)}</p>
"""
    return _page("Sign in error", body)


def form_post_page(*, redirect_uri: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in fields.items()
    )
    body = f"""
<form method="post" action="{escape(redirect_uri)}" id="response">{inputs}
  <noscript><button type="submit" class="primary">Continue</button></noscript>
</form>
<script>document.getElementById("response").submit();</script>
"""
    return _page("Working...", body)
