"""A fake OpenID Connect provider on 127.0.0.1: a discovery document and a JSON Web Key Set.

The provider generates an RSA key when it starts and signs tokens with it. ``token`` also signs
with another key under the same key id, to play an attacker, and ``rotate`` swaps the published
key. ``jwks_requests`` counts how often the key set was fetched, to check caching.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes.loopback import LoopbackFake
from fastapi import FastAPI

AUDIENCE = "costwarden-api"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeOidcProvider(LoopbackFake):
    """A running provider as a context manager; ``issuer`` is its base URL."""

    server_name = "the fake OIDC provider"

    def __init__(self) -> None:
        self.key = new_rsa_key()
        self.kid = uuid.uuid4().hex[:12]
        self.jwks_requests = 0
        self.available = True
        self.app = self._build_app()

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks.json"

    def rotate(self) -> None:
        """Publish a new key under a new key id; tokens signed with the old one stop working."""
        self.key = new_rsa_key()
        self.kid = uuid.uuid4().hex[:12]

    def token(
        self,
        subject: str = "alice",
        *,
        groups: list[str] | str | None = None,
        lifetime: int = 300,
        audience: str = AUDIENCE,
        issuer: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """Return a signed JWT; ``lifetime`` below 0 gives an expired one."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime,
            **claims,
        }
        if groups is not None:
            payload["groups"] = groups
        headers = {"kid": kid or self.kid}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers=headers)

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {"issuer": self.issuer, "jwks_uri": self.jwks_url}

        @app.get("/jwks.json")
        def jwks() -> Any:
            from fastapi.responses import JSONResponse

            self.jwks_requests += 1
            if not self.available:
                return JSONResponse({"error": "unavailable"}, status_code=503)
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
            return {"keys": [public]}

        return app
