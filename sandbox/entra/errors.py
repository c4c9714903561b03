"""Entra ID (AADSTS) errors, written the way the v2.0 endpoints write them.

Token endpoint errors are JSON: `error`, `error_description` ("AADSTSnnnn: text Trace ID: ... Correlation
ID: ... Timestamp: ..."), `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri` and, for some,
`suberror`. Authorize errors go back to the redirect URI as query parameters when the redirect URI can be
trusted, else they are shown on an error page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class AadError(Exception):
    error: str
    code: int
    text: str
    status: int = 400
    suberror: str = ""

    @property
    def description(self) -> str:
        return f"AADSTS{self.code}: {self.text}"

    def body(self, now: datetime, correlation_id: str | None = None) -> dict[str, Any]:
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": (
                f"{self.description} Trace ID: {trace_id} Correlation ID: {correlation} Timestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        if self.suberror:
            body["suberror"] = self.suberror
        return body


def missing_parameter(name: str) -> AadError:
    return AadError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def unknown_client(client_id: str, tenant: str) -> AadError:
    return AadError(
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen "
        "if the application has not been installed by the administrator of the tenant or consented to by any "
        "user in the tenant. You might have sent your authentication request to the wrong tenant.",
    )


def invalid_secret(client_id: str) -> AadError:
    return AadError(
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        f"not the client secret ID, for a secret added to app '{client_id}'.",
        status=401,
    )


def missing_secret() -> AadError:
    return AadError(
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        status=401,
    )


def unknown_tenant(segment: str) -> AadError:
    return AadError(
        "invalid_tenant",
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into "
        "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


def redirect_mismatch(redirect_uri: str, client_id: str) -> AadError:
    return AadError(
        "invalid_request",
        50011,
        f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured "
        f"for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added "
        "to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn "
        "more about how to fix this.",
    )


def malformed_grant() -> AadError:
    return AadError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")


def code_redeemed() -> AadError:
    return AadError(
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing "
        "refresh token.",
    )


def code_expired() -> AadError:
    return AadError(
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive "
        "authorization request for this user and resource.",
    )


def pkce_mismatch() -> AadError:
    return AadError(
        "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."
    )


def refresh_inactive(issued: datetime) -> AadError:
    return AadError(
        "invalid_grant",
        700082,
        f"The refresh token has expired due to inactivity. The token was issued on {issued.isoformat()} and was "
        "inactive for 90.00:00:00.",
    )


def grant_revoked(issued: datetime, valid_from: datetime) -> AadError:
    return AadError(
        "invalid_grant",
        50173,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have "
        f"changed or reset their password. The grant was issued on '{issued.isoformat()}' and the TokensValidFrom "
        f"date (before which tokens are not valid) for this user is '{valid_from.isoformat()}'.",
    )


def interaction_required(resource_app_id: str) -> AadError:
    return AadError(
        "interaction_required",
        50079,
        "Due to a configuration change made by your administrator, or because you moved to a new location, you "
        f"must enroll in multi-factor authentication to access '{resource_app_id}'.",
        suberror="basic_action",
    )


def consent_required(client_id: str, app_name: str) -> AadError:
    return AadError(
        "invalid_grant",
        65001,
        f"The user or administrator has not consented to use the application with ID '{client_id}' named "
        f"'{app_name}'. Send an interactive authorization request for this user and resource.",
        suberror="consent_required",
    )


def several_resources(scope: str) -> AadError:
    return AadError(
        "invalid_scope",
        28000,
        "Provided value for the input parameter scope is not valid because it contains more than one resource. "
        f"Scope {scope} is not valid.",
    )


def unknown_resource(resource: str, tenant_name: str) -> AadError:
    return AadError(
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant_name}. This can happen "
        "if the application has not been installed by the administrator of the tenant or consented to by any user "
        "in the tenant. You might have sent your authentication request to the wrong tenant.",
    )


def unknown_scope(client_id: str, scope: str, resource_app_id: str) -> AadError:
    return AadError(
        "invalid_client",
        650053,
        f"The application '{client_id}' asked for scope '{scope}' that doesn't exist on the resource "
        f"'{resource_app_id}'. Contact the app vendor.",
    )


def user_not_in_tenant(upn: str, tenant_name: str) -> AadError:
    return AadError(
        "invalid_grant",
        50020,
        f"User account '{upn}' from identity provider 'https://sts.windows.net/' does not exist in tenant "
        f"'{tenant_name}' and cannot access the application in that tenant. The account needs to be added as an "
        "external user in the tenant first. Sign out and sign in again with a different Azure Active Directory "
        "user account.",
    )


def unsupported_grant(grant_type: str) -> AadError:
    return AadError(
        "unsupported_grant_type",
        70003,
        f"The app requested an unsupported grant type '{grant_type}'.",
    )


def unsupported_response_type(response_type: str) -> AadError:
    return AadError(
        "unsupported_response_type",
        70005,
        f"The response_type '{response_type}' is not enabled for the application.",
    )


def declined_consent() -> AadError:
    return AadError("access_denied", 65004, "User declined to consent to access the app.", suberror="cancel")
