"""What Xero's identity service keeps: apps, scopes, pending sign-ins, codes, connections, token families,
and the errors its endpoints answer with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

IDENTITY_SCOPES = {"openid", "profile", "email", "offline_access"}
SETTINGS_SCOPES = {"accounting.settings", "accounting.settings.read"}
KNOWN_SCOPES = IDENTITY_SCOPES | SETTINGS_SCOPES | {
    f"{base}{suffix}" for suffix in ("", ".read") for base in (
        "accounting.contacts", "accounting.attachments", "accounting.invoices", "accounting.payments",
        "accounting.banktransactions", "accounting.manualjournals", "accounting.classicexpenses",
        "assets", "projects", "files", "payroll.employees", "payroll.payruns", "payroll.payslip",
        "payroll.timesheets", "payroll.settings")
} | {"accounting.journals.read", "accounting.budgets.read", "accounting.reports.aged.read",
     "accounting.reports.profitandloss.read", "accounting.reports.balancesheet.read",
     "accounting.reports.trialbalance.read", "accounting.reports.executivesummary.read",
     "accounting.reports.tenninetynine.read", "finance.accountingactivity.read", "finance.bankstatementsplus.read",
     "finance.cashvalidation.read", "finance.statements.read", "bankfeeds", "paymentservices"}
# The sandbox app counts as created after 2 March 2026: the broad scopes these replaced are refused.
REMOVED_SCOPES = {"accounting.transactions", "accounting.transactions.read", "accounting.reports.read"}


class AuthorizeError(Exception):
    """Shown on Xero's error page (status 500), never sent back to the redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description = error, description


class TokenError(Exception):
    """A 400 from /connect/token or /connect/revocation: `{"error": ...}`."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(error)
        self.error, self.description = error, description


class BearerError(Exception):
    """A 401 from the API: `detail` is the problem body's Detail."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class App:
    client_id: str
    secret: str | None  # None: an "Auth Code with PKCE" app, which has no secret
    name: str
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class SignIn:
    """An authorize request waiting for the user to sign in and consent."""

    rid: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    expires_at: float


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    email: str
    scopes: tuple[str, ...]
    requested: tuple[str, ...]
    code_challenge: str | None
    nonce: str | None
    auth_event_id: str
    expires_at: float
    used: bool = False


@dataclass
class Connection:
    id: str
    email: str
    client_id: str
    tenant_id: str
    auth_event_id: str
    created: datetime
    updated: datetime
    active: bool = True


@dataclass
class Family:
    """The refresh tokens (and their access tokens) descending from one code exchange."""

    id: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    auth_event_id: str
    session_id: str
    nonce: str | None = None
    revoked: bool = False


@dataclass
class RefreshRecord:
    family_id: str
    issued_at: float
    superseded_at: float | None = None


@dataclass
class AccessRecord:
    family_id: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False
