"""The privacy and terms pages the Teams manifest links to."""

from __future__ import annotations

import html

from aiohttp import web

from bot.config import Settings

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>{title}</h1>{body}</body></html>"""

PRIVACY = """<p>The connector keeps the sign-in tokens for Xero and Dynamics 365 (encrypted), the connection's
configuration (name, plan, timezone, the organisation and environment it links) and a history of runs (times,
counts and error summaries). It does not keep any financial data: accounts, tax rates and branding themes are
read from Xero and written to your Dynamics 365 environment, and nothing of their values is stored on our side.
<code>sync disconnect</code> revokes the Xero sign-in, forgets the Dynamics 365 sign-in and stops the schedule.</p>"""

TERMS = """<p>The connector copies reference data from Xero to Microsoft Dynamics 365 on the schedule of the plan
you chose. It is provided as is; you remain responsible for the data in both systems and for who in your
organisation may operate the connection.</p>"""


def legal_routes(settings: Settings) -> list[web.RouteDef]:
    def page(title: str, body: str) -> web.Response:
        return web.Response(text=_PAGE.format(title=html.escape(title), body=body), content_type="text/html")

    async def privacy(_request: web.Request) -> web.Response:
        return page("Privacy", PRIVACY)

    async def terms(_request: web.Request) -> web.Response:
        return page("Terms of use", TERMS)

    return [web.get("/privacy", privacy), web.get("/terms", terms)]
