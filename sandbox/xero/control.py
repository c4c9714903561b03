"""The control API over HTTP: JSON under /_sandbox/xero/, one route per XeroSandbox control method.

Bodies use the Python methods' keyword names; data fields use Xero's names (`{"Code": "201", ...}`).
Errors: 400 `{"error": "..."}` for invalid values, 404 for unknown tenants, users or objects.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.xero.orgs import UnknownObject
from sandbox.xero.resources import XeroValidationError
from sandbox.xero.tracking import UnknownTracking

if TYPE_CHECKING:
    from sandbox.xero.sandbox import XeroSandbox

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, default=str))


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text='{"error": "the body must be JSON"}', content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "the body must be a JSON object"}', content_type="application/json")
    return data


def _guard(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (UnknownObject, UnknownTracking) as exc:
            return _json({"error": str(exc.args[0] if exc.args else exc)}, 404)
        except KeyError as exc:
            return _json({"error": f"missing field {exc}"}, 400)
        except (XeroValidationError, ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
    return guarded


def add_control_routes(app: web.Application, sandbox: XeroSandbox, prefix: str) -> None:
    s = sandbox

    async def summary(request: web.Request) -> web.Response:
        return _json({
            "tenants": [{"tenantId": o.tenant_id, "name": o.name, "country": o.country,
                         "accounts": len(o.accounts)} for o in s.orgs.values()],
            "users": {email: s.tenants_for(email) for email in s.user_tenants},
            "redirectUris": {a.client_id: a.redirect_uris for a in s.identity.apps.values()},
        })

    async def redirect_uri(request: web.Request) -> web.Response:
        body = await _body(request)
        s.register_redirect_uri(str(body["uri"]), **({"client_id": body["client_id"]} if "client_id" in body else {}))
        return _json({"ok": True})

    async def add_account(request: web.Request) -> web.Response:
        account_id = s.add_account(request.match_info["tenant"], **await _body(request))
        return _json({"AccountID": account_id}, 201)

    async def update_account(request: web.Request) -> web.Response:
        body = await _body(request)
        touch = bool(body.pop("touch", True))
        s.update_account(request.match_info["tenant"], request.match_info["id"], touch=touch, **body)
        return _json({"ok": True})

    async def archive_account(request: web.Request) -> web.Response:
        s.archive_account(request.match_info["tenant"], request.match_info["id"])
        return _json({"ok": True})

    async def delete_account(request: web.Request) -> web.Response:
        s.delete_account(request.match_info["tenant"], request.match_info["id"])
        return _json({"ok": True})

    async def list_accounts(request: web.Request) -> web.Response:
        return _json(s.accounts(request.match_info["tenant"]))

    async def add_tax_rate(request: web.Request) -> web.Response:
        return _json({"TaxType": s.add_tax_rate(request.match_info["tenant"], **await _body(request))}, 201)

    async def update_tax_rate(request: web.Request) -> web.Response:
        s.update_tax_rate(request.match_info["tenant"], request.match_info["tax_type"], **await _body(request))
        return _json({"ok": True})

    async def list_tax_rates(request: web.Request) -> web.Response:
        return _json(s.tax_rates(request.match_info["tenant"]))

    async def add_theme(request: web.Request) -> web.Response:
        theme_id = s.add_branding_theme(request.match_info["tenant"], **await _body(request))
        return _json({"BrandingThemeID": theme_id}, 201)

    async def update_theme(request: web.Request) -> web.Response:
        s.update_branding_theme(request.match_info["tenant"], request.match_info["id"], **await _body(request))
        return _json({"ok": True})

    async def delete_theme(request: web.Request) -> web.Response:
        s.delete_branding_theme(request.match_info["tenant"], request.match_info["id"])
        return _json({"ok": True})

    async def list_themes(request: web.Request) -> web.Response:
        return _json(s.branding_themes(request.match_info["tenant"]))

    async def list_tracking(request: web.Request) -> web.Response:
        return _json(s.tracking_categories(request.match_info["tenant"]))

    async def add_tracking(request: web.Request) -> web.Response:
        category_id = s.add_tracking_category(request.match_info["tenant"], **await _body(request))
        return _json({"TrackingCategoryID": category_id}, 201)

    async def update_tracking(request: web.Request) -> web.Response:
        s.update_tracking_category(request.match_info["tenant"], request.match_info["id"], **await _body(request))
        return _json({"ok": True})

    async def delete_tracking(request: web.Request) -> web.Response:
        s.delete_tracking_category(request.match_info["tenant"], request.match_info["id"])
        return _json({"ok": True})

    async def add_option(request: web.Request) -> web.Response:
        m = request.match_info
        option_id = s.add_tracking_option(m["tenant"], m["id"], **await _body(request))
        return _json({"TrackingOptionID": option_id}, 201)

    async def update_option(request: web.Request) -> web.Response:
        m = request.match_info
        s.update_tracking_option(m["tenant"], m["id"], m["option"], **await _body(request))
        return _json({"ok": True})

    async def delete_option(request: web.Request) -> web.Response:
        m = request.match_info
        s.delete_tracking_option(m["tenant"], m["id"], m["option"])
        return _json({"ok": True})

    async def generate_org(request: web.Request) -> web.Response:
        body = await _body(request)
        return _json({"tenantId": s.generate_org(**body)}, 201)

    async def fail(request: web.Request) -> web.Response:
        body = await _body(request)
        s.fail_next(int(body.pop("n", 1)), int(body.pop("status")), **body)
        return _json({"ok": True})

    async def drop(request: web.Request) -> web.Response:
        body = await _body(request)
        s.drop_next(int(body.pop("n", 1)), **body)
        return _json({"ok": True})

    async def latency(request: web.Request) -> web.Response:
        s.set_latency(float((await _body(request))["seconds"]))
        return _json({"ok": True})

    async def expire(request: web.Request) -> web.Response:
        s.expire_access_tokens()
        return _json({"ok": True})

    async def revoke_user(request: web.Request) -> web.Response:
        s.revoke_user_tokens(request.match_info["email"])
        return _json({"ok": True})

    async def user_tenants(request: web.Request) -> web.Response:
        return _json(s.tenants_for(request.match_info["email"]))

    async def user_connections(request: web.Request) -> web.Response:
        return _json(s.connections(request.match_info["email"]))

    async def disconnect(request: web.Request) -> web.Response:
        s.disconnect(request.match_info["email"], str((await _body(request))["tenant_id"]))
        return _json({"ok": True})

    async def issue_tokens(request: web.Request) -> web.Response:
        return _json(s.issue_tokens(request.match_info["email"], **await _body(request)))

    async def requests(request: web.Request) -> web.Response:
        return _json([asdict(r) for r in s.requests])

    async def clear_requests(request: web.Request) -> web.Response:
        s.requests.clear()
        return _json({"ok": True})

    async def reset(request: web.Request) -> web.Response:
        s.reset()
        return _json({"ok": True})

    t = prefix + "/tenants/{tenant}"
    routes: list[tuple[str, str, Handler]] = [
        ("GET", prefix, summary),
        ("POST", prefix + "/redirect-uris", redirect_uri),
        ("GET", t + "/accounts", list_accounts),
        ("POST", t + "/accounts", add_account),
        ("PATCH", t + "/accounts/{id}", update_account),
        ("POST", t + "/accounts/{id}/archive", archive_account),
        ("DELETE", t + "/accounts/{id}", delete_account),
        ("GET", t + "/tax-rates", list_tax_rates),
        ("POST", t + "/tax-rates", add_tax_rate),
        ("PATCH", t + "/tax-rates/{tax_type}", update_tax_rate),
        ("GET", t + "/branding-themes", list_themes),
        ("POST", t + "/branding-themes", add_theme),
        ("PATCH", t + "/branding-themes/{id}", update_theme),
        ("DELETE", t + "/branding-themes/{id}", delete_theme),
        ("GET", t + "/tracking-categories", list_tracking),
        ("POST", t + "/tracking-categories", add_tracking),
        ("PATCH", t + "/tracking-categories/{id}", update_tracking),
        ("DELETE", t + "/tracking-categories/{id}", delete_tracking),
        ("POST", t + "/tracking-categories/{id}/options", add_option),
        ("PATCH", t + "/tracking-categories/{id}/options/{option}", update_option),
        ("DELETE", t + "/tracking-categories/{id}/options/{option}", delete_option),
        ("POST", prefix + "/orgs", generate_org),
        ("POST", prefix + "/faults/fail", fail),
        ("POST", prefix + "/faults/drop", drop),
        ("POST", prefix + "/latency", latency),
        ("POST", prefix + "/expire-access-tokens", expire),
        ("GET", prefix + "/users/{email}/tenants", user_tenants),
        ("POST", prefix + "/users/{email}/revoke", revoke_user),
        ("GET", prefix + "/users/{email}/connections", user_connections),
        ("POST", prefix + "/users/{email}/disconnect", disconnect),
        ("POST", prefix + "/users/{email}/tokens", issue_tokens),
        ("GET", prefix + "/requests", requests),
        ("DELETE", prefix + "/requests", clear_requests),
        ("POST", prefix + "/reset", reset),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guard(handler))
