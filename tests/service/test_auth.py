"""Callers of the REST API: API keys, OIDC tokens from a fake provider, roles and refusals."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
from fakes.oidc import AUDIENCE, FakeOidcProvider, new_rsa_key

if TYPE_CHECKING:
    from conftest import RunningService

# Callers and tokens do not depend on the database, so SQLite alone is enough here.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ADMIN_KEY = "admin-secret-key"
READ_KEY = "read-secret-key"
KEYS = [
    {"name": "ops", "key": ADMIN_KEY, "role": "admin"},
    {"name": "viewer", "sha256": hashlib.sha256(READ_KEY.encode()).hexdigest(), "role": "read"},
]
BUDGET = {"name": "team-a", "scope": {"cluster": "prod"}, "amount": 10}


@pytest.fixture
def provider() -> Iterator[FakeOidcProvider]:
    with FakeOidcProvider() as running:
        yield running


def _oidc(provider: FakeOidcProvider, **extra: Any) -> dict[str, Any]:
    return {
        "issuer": provider.issuer,
        "audience": AUDIENCE,
        "jwks_url": provider.jwks_url,
        "admin_values": ["finops-admins"],
        "read_values": ["finops-readers"],
        **extra,
    }


def _get(service: RunningService, **headers: str) -> httpx.Response:
    return httpx.get(f"{service.url}/api/v1/budgets", headers=headers)


def _post(service: RunningService, **headers: str) -> httpx.Response:
    return httpx.post(f"{service.url}/api/v1/budgets", json=BUDGET, headers=headers)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_unconfigured_api_rejects_everyone(start_service: Callable[..., RunningService]) -> None:
    service = start_service()

    response = _get(service, **{"X-API-Key": ADMIN_KEY})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "service.api_keys" in response.json()["error"]["message"]


def test_missing_and_wrong_keys(start_service: Callable[..., RunningService]) -> None:
    service = start_service(service={"api_keys": KEYS})

    missing = _get(service)
    wrong = _get(service, **{"X-API-Key": "guess"})
    basic = _get(service, Authorization="Basic b3BzOmFkbWlu")

    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "X-API-Key" in missing.json()["error"]["message"]
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert basic.status_code == 401


def test_key_roles(start_service: Callable[..., RunningService]) -> None:
    service = start_service(service={"api_keys": KEYS})

    assert _get(service, **{"X-API-Key": READ_KEY}).status_code == 200
    assert _get(service, **_bearer(READ_KEY)).status_code == 200
    refused = _post(service, **_bearer(READ_KEY))
    assert refused.status_code == 403
    assert "admin role" in refused.json()["error"]["message"]
    assert _post(service, **{"X-API-Key": ADMIN_KEY}).status_code == 201


def test_open_routes_need_no_key(start_service: Callable[..., RunningService]) -> None:
    service = start_service(service={"api_keys": KEYS})

    schema = httpx.get(f"{service.url}/openapi.json")
    docs = httpx.get(f"{service.url}/docs")

    assert schema.status_code == 200
    assert docs.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/budgets:import" in paths
    assert "thresholds" in paths["/api/v1/budgets:import"]["post"]["description"]
    assert set(schema.json()["components"]["securitySchemes"]) == {"APIKeyHeader", "HTTPBearer"}
    listing = paths["/api/v1/alerts"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listing["schema"]["$ref"].endswith("Page_AlertSummary_")


def test_oidc_roles(
    start_service: Callable[..., RunningService], provider: FakeOidcProvider
) -> None:
    service = start_service(service={"oidc": _oidc(provider)})
    admin = provider.token("alice", groups=["finops-admins"])
    viewer = provider.token("bob", groups="finops-readers")
    outsider = provider.token("eve", groups=["marketing"])

    assert _post(service, **_bearer(admin)).status_code == 201
    assert _get(service, **_bearer(viewer)).status_code == 200
    assert _post(service, **_bearer(viewer)).status_code == 403
    denied = _get(service, **_bearer(outsider))
    assert denied.status_code == 403
    assert "'eve'" in denied.json()["error"]["message"]
    assert provider.jwks_requests == 1


def test_oidc_without_read_values(
    start_service: Callable[..., RunningService], provider: FakeOidcProvider
) -> None:
    service = start_service(service={"oidc": _oidc(provider, read_values=[])})

    response = _get(service, **_bearer(provider.token("carol")))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired", "expired"),
        ("audience", "audience"),
        ("issuer", "issuer"),
        ("other_key", "signature"),
        ("unknown_kid", "signing key"),
        ("garbage", "invalid bearer token"),
        ("unsigned", "invalid bearer token"),
    ],
)
def test_oidc_rejects_bad_tokens(
    start_service: Callable[..., RunningService],
    provider: FakeOidcProvider,
    case: str,
    expected: str,
) -> None:
    service = start_service(service={"oidc": _oidc(provider)})
    groups = ["finops-admins"]
    tokens = {
        "expired": lambda: provider.token(groups=groups, lifetime=-3600),
        "audience": lambda: provider.token(groups=groups, audience="someone-else"),
        "issuer": lambda: provider.token(groups=groups, issuer="https://evil.example"),
        "other_key": lambda: provider.token(groups=groups, key=new_rsa_key()),
        "unknown_kid": lambda: provider.token(groups=groups, key=new_rsa_key(), kid="nope"),
        "garbage": lambda: "not-a-jwt",
        "unsigned": lambda: jwt.encode(
            {"sub": "x", "aud": AUDIENCE, "iss": provider.issuer, "groups": groups, "exp": 2**31},
            key=None,
            algorithm="none",
        ),
    }

    response = _get(service, **_bearer(tokens[case]()))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert expected in response.json()["error"]["message"].lower()


def test_oidc_key_set_unavailable(
    start_service: Callable[..., RunningService], provider: FakeOidcProvider
) -> None:
    service = start_service(service={"oidc": _oidc(provider)})
    provider.available = False

    response = _get(service, **_bearer(provider.token(groups=["finops-admins"])))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


def test_keys_and_oidc_together(
    start_service: Callable[..., RunningService], provider: FakeOidcProvider
) -> None:
    service = start_service(service={"api_keys": KEYS, "oidc": _oidc(provider)})

    assert _get(service, **_bearer(READ_KEY)).status_code == 200
    assert _get(service, **_bearer(provider.token(groups=["finops-readers"]))).status_code == 200
    assert _get(service, **{"X-API-Key": "guess"}).status_code == 401
