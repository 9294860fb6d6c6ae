"""Callers of the REST API: API keys and OIDC bearer tokens, with read and admin roles.

A key arrives in ``X-API-Key`` or as ``Authorization: Bearer <key>``. A bearer value that matches
no key is checked as a JWT against the OIDC provider's key set when OIDC is configured. With no
key and no OIDC configured, every call is rejected: the API is never open by default.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from costwarden.config import OidcSettings, ServiceSettings
from costwarden.errors import AuthenticationError, PermissionDeniedError, UnavailableError
from costwarden.service.state import ServiceState

logger = logging.getLogger(__name__)

Role = Literal["read", "admin"]
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="costwarden"'}
_RANK = {"read": 1, "admin": 2}


@dataclass(frozen=True, slots=True)
class Caller:
    """The sender of a request: key name or token subject, role, and credential type."""

    name: str
    role: Role
    method: Literal["api_key", "oidc"]


@dataclass(frozen=True, slots=True)
class _Key:
    name: str
    role: Role
    digest: bytes


class Authenticator:
    """Check the credentials of one request against the configured keys and OIDC provider."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._keys = [_key_of(entry) for entry in settings.api_keys]
        self._oidc = settings.oidc
        self._jwks: jwt.PyJWKClient | None = None
        if settings.oidc is not None:
            self._jwks = _jwks_client(settings.oidc)

    @property
    def configured(self) -> bool:
        return bool(self._keys) or self._oidc is not None

    def authenticate(self, api_key: str | None, authorization: str | None) -> Caller:
        """Return the caller, or raise ``AuthenticationError`` (401) or ``UnavailableError``."""
        if not self.configured:
            raise AuthenticationError(
                "the API has no callers configured; add a key to service.api_keys (for example "
                'COSTWARDEN_SERVICE_API_KEYS=\'[{"name": "ops", "sha256": "<hex>", '
                '"role": "admin"}]\') or configure service.oidc'
            )

        bearer = _bearer_value(authorization)
        credential = api_key or bearer
        if not credential:
            raise AuthenticationError(
                "missing credentials; send an API key in X-API-Key or a bearer token in "
                "the Authorization header"
            )

        caller = self.match_key(credential)
        if caller is not None:
            return caller
        if bearer and self._oidc is not None and api_key is None:
            return self._check_token(bearer)
        raise AuthenticationError("invalid API key or bearer token")

    def match_key(self, credential: str) -> Caller | None:
        """Return the caller whose API key is ``credential``, or None."""
        digest = hashlib.sha256(credential.encode()).digest()
        found: _Key | None = None
        # Compare with every key, so the time taken does not tell how many keys were tried.
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest) and found is None:
                found = key
        if found is None:
            return None
        return Caller(found.name, found.role, "api_key")

    def _check_token(self, token: str) -> Caller:
        assert self._oidc is not None and self._jwks is not None
        claims = self._decode(token, self._oidc, self._jwks)
        role = _role_of(claims, self._oidc)
        name = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])
        if role is None:
            raise PermissionDeniedError(
                f"token of {name!r} has no {self._oidc.roles_claim!r} value that grants a role; "
                "ask the identity provider's administrator for a read or admin group"
            )
        return Caller(name, role, "oidc")

    @staticmethod
    def _decode(token: str, oidc: OidcSettings, jwks: jwt.PyJWKClient) -> dict[str, Any]:
        try:
            key = jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            logger.error("could not fetch the OIDC key set from %s: %s", oidc.jwks_url, exc)
            raise UnavailableError(
                "could not fetch the OIDC key set; try again later or use an API key"
            ) from exc
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise AuthenticationError(f"invalid bearer token: {exc}") from exc

        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=oidc.algorithms,
                audience=oidc.audience,
                issuer=oidc.issuer,
                leeway=oidc.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid bearer token: {exc}") from exc


# Declared as security schemes so that /docs offers both ways to send credentials. Neither
# rejects a request by itself: ``Authenticator`` decides.
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
BEARER = HTTPBearer(auto_error=False, description="An API key or an OIDC access token (JWT).")


async def current_caller(
    request: Request,
    api_key: Annotated[str | None, Security(API_KEY_HEADER)],
    _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Caller:
    """FastAPI dependency: authenticate the request whatever the caller's role.

    API keys are checked on the event loop. A bearer token that is not a key is checked on a
    worker thread, because fetching the OIDC key set blocks.
    """
    checker = getattr(request.app.state, "authenticator", None)
    if checker is None:
        state: ServiceState = request.app.state.service
        checker = Authenticator(state.settings.service)
        request.app.state.authenticator = checker

    authorization = request.headers.get("Authorization")
    caller = checker.match_key(api_key or _bearer_value(authorization) or "")
    if caller is None:
        caller = await run_in_threadpool(checker.authenticate, api_key, authorization)
    request.state.caller = caller
    return caller


async def require_read(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """FastAPI dependency: any authenticated caller."""
    return caller


async def require_admin(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """FastAPI dependency: only callers with the admin role."""
    if _RANK[caller.role] < _RANK["admin"]:
        raise PermissionDeniedError(
            f"caller {caller.name!r} has the read role; this request needs the admin role"
        )
    return caller


def _key_of(entry: Any) -> _Key:
    if entry.sha256 is not None:
        digest = bytes.fromhex(entry.sha256)
    else:
        digest = hashlib.sha256(entry.key.get_secret_value().encode()).digest()
    return _Key(entry.name, entry.role, digest)


def _jwks_client(oidc: OidcSettings) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(
        oidc.jwks_url,
        cache_jwk_set=oidc.jwks_cache_seconds > 0,
        lifespan=max(oidc.jwks_cache_seconds, 1),
        timeout=10,
    )


def _bearer_value(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _role_of(claims: dict[str, Any], oidc: OidcSettings) -> Role | None:
    raw = claims.get(oidc.roles_claim)
    values = {raw} if isinstance(raw, str) else {str(item) for item in raw or ()}
    if values & set(oidc.admin_values):
        return "admin"
    if not oidc.read_values or values & set(oidc.read_values):
        return "read"
    return None
