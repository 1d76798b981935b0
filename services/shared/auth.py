"""Who is calling. The principal is resolved once per request and copied into every event as the actor.

Two sources exist today: static bearer tokens from configuration (service accounts, tests) and, for the
embedded default only, a development principal for requests from loopback without credentials. OIDC
plugs in here later (issue: identity).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

import msgspec

from contracts.envelope import Actor
from services.shared.errors import ForbiddenError

ADMIN = "admin"
VIEWER = "viewer"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    display_name: str = ""
    tenant_id: str
    roles: tuple[str, ...] = ()

    def actor(self) -> Actor:
        return Actor(subject=self.subject, display_name=self.display_name, roles=self.roles)

    def require_tenant(self, tenant_id: str) -> None:
        """Refuse to act on a tenant that is not the caller's; the error does not say whether it exists."""
        if tenant_id != self.tenant_id:
            raise ForbiddenError(f"tenant {tenant_id!r} is not accessible to {self.subject!r}")

    def require_role(self, *roles: str) -> None:
        if not set(roles) & set(self.roles):
            raise ForbiddenError(f"{self.subject!r} needs one of the roles {sorted(roles)}")


def is_loopback(host: str | None) -> bool:
    """Whether an address (or ``localhost``) is on this machine: where the development principal may apply."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dev_principal(tenant_id: str) -> Principal:
    return Principal(subject="dev", display_name="Local developer", tenant_id=tenant_id, roles=(ADMIN,))


class TokenTable:
    """Static bearer tokens: compared in constant time, never logged."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self._tokens = dict(tokens)

    def resolve(self, token: str) -> Principal | None:
        for known, principal in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return principal
        return None
