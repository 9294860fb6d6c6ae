"""A small Kubernetes REST client built from a kubeconfig, for the Kubernetes actions.

``KubeConfig.parse`` reads the current context of a kubeconfig: the server URL, the CA bundle
(``certificate-authority-data``), and a bearer token or a client certificate and key
(``client-certificate-data`` and ``client-key-data``). File references and exec plugins are not
supported, because Palette serves kubeconfigs with inline data. ``KubeClient`` sends JSON
requests with plain httpx, retries 429 (after ``Retry-After``), 5xx and transport errors, and
raises ``KubernetesError`` with the ``reason`` of Kubernetes' ``Status`` body.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from costwarden.actions.jsonbody import json_object
from costwarden.config import KubernetesActionSettings
from costwarden.errors import KubernetesError

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
BACKOFF_BASE_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class KubeConfig:
    """The parts of a kubeconfig's current context that a client needs."""

    server: str
    token: str | None = None
    ca_pem: bytes | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    insecure_skip_tls_verify: bool = False

    @classmethod
    def parse(cls, text: str, *, source: str = "kubeconfig") -> KubeConfig:
        """Parse a kubeconfig's current context; raise ``KubernetesError`` naming the problem."""
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise KubernetesError(f"{source} is not valid YAML: {exc}") from exc
        if not isinstance(config, dict):
            raise KubernetesError(f"{source} is not a kubeconfig: expected a YAML mapping")

        context_name = config.get("current-context")
        context = _named(config, "contexts", context_name, source)["context"]
        cluster = _named(config, "clusters", context.get("cluster"), source)["cluster"]
        user = _named(config, "users", context.get("user"), source).get("user") or {}
        server = cluster.get("server")
        if not server or httpx.URL(server).scheme not in ("http", "https"):
            raise KubernetesError(f"{source}: cluster server {server!r} is not an http(s) URL")
        if "exec" in user or "auth-provider" in user or "tokenFile" in user:
            raise KubernetesError(
                f"{source}: user {context.get('user')!r} uses an exec plugin, auth provider or "
                "token file; only an inline token or client certificate is supported"
            )

        return cls(
            server=server.rstrip("/"),
            token=user.get("token"),
            ca_pem=_decoded(cluster, "certificate-authority-data", source),
            client_cert_pem=_decoded(user, "client-certificate-data", source),
            client_key_pem=_decoded(user, "client-key-data", source),
            insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        )

    def verify(self) -> ssl.SSLContext | bool:
        """Return httpx's ``verify`` value: an SSL context for https, True for plain http."""
        if not self.server.startswith("https://"):
            return True
        context = ssl.create_default_context()
        if self.ca_pem:
            context.load_verify_locations(cadata=self.ca_pem.decode())
        if self.insecure_skip_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem and self.client_key_pem:
            _load_client_certificate(context, self.client_cert_pem, self.client_key_pem)
        return context


def _named(config: dict[str, Any], section: str, name: Any, source: str) -> dict[str, Any]:
    entries = config.get(section) or []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    if name is None and len(entries) == 1 and isinstance(entries[0], dict):
        return entries[0]
    names = ", ".join(str(entry.get("name")) for entry in entries if isinstance(entry, dict))
    raise KubernetesError(f"{source}: no entry {name!r} in {section} (entries: {names or 'none'})")


def _decoded(entry: dict[str, Any], key: str, source: str) -> bytes | None:
    value = entry.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KubernetesError(f"{source}: {key} is not valid base64: {exc}") from exc


def _load_client_certificate(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load a certificate and key held in memory; ``ssl`` reads them only from files."""
    fd, path = tempfile.mkstemp(prefix="costwarden-kube-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(cert.rstrip(b"\n") + b"\n" + key)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


class KubeClient:
    """Blocking JSON calls to one Kubernetes API server, with retries.

    ``sleep`` waits between retries (tests pass a recorder). Use as a context manager, or call
    ``close``.
    """

    def __init__(
        self,
        config: KubeConfig,
        settings: KubernetesActionSettings,
        *,
        sleep: Callable[[float], None],
        cluster: str = "",
    ) -> None:
        self.config = config
        self.cluster = cluster
        self._settings = settings
        self._sleep = sleep
        headers = {"Accept": "application/json"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._http = httpx.Client(
            base_url=config.server,
            headers=headers,
            timeout=settings.timeout_seconds,
            verify=config.verify(),
        )

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", path, body=body)

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request, retrying 429, 5xx and transport errors; return the JSON body."""
        attempts = self._settings.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._http.request(
                    method, path, json=body, headers={"Content-Type": content_type}
                )
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise KubernetesError(
                        f"cannot reach the Kubernetes API of cluster {self.cluster or '?'} at "
                        f"{self.config.server} for {method} {path} after {attempts} attempts: "
                        f"{type(exc).__name__}: {exc}",
                        method=method,
                        path=path,
                    ) from exc
                self._wait(method, path, attempt, type(exc).__name__, None)
                continue

            if response.status_code == 429 or response.status_code >= 500:
                if attempt < attempts:
                    reason = f"HTTP {response.status_code}"
                    self._wait(method, path, attempt, reason, response.headers.get("Retry-After"))
                    continue
            if response.is_success:
                return _json_body(response, method, path)
            raise self._error(method, path, response, attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    def _wait(
        self, method: str, path: str, attempt: int, reason: str, retry_after: str | None
    ) -> None:
        delay = BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)
        if retry_after is not None and retry_after.strip().isdigit():
            delay = float(retry_after.strip())
        delay = min(delay, self._settings.backoff_max_seconds)
        logger.warning(
            "Kubernetes %s %s on cluster %s failed with %s; retry %d of %d in %.2f s",
            method,
            path,
            self.cluster or "?",
            reason,
            attempt,
            self._settings.max_retries,
            delay,
        )
        self._sleep(delay)

    def _error(
        self, method: str, path: str, response: httpx.Response, attempts: int
    ) -> KubernetesError:
        status = response.status_code
        reason, message = _status_body(response)
        advice = ""
        if status in (401, 403):
            advice = "; the kubeconfig's credentials were rejected or lack permission"
        elif status == 429 or status >= 500:
            advice = f" after {attempts} attempts"
        return KubernetesError(
            f"Kubernetes {method} {path} on cluster {self.cluster or '?'} failed with HTTP "
            f"{status} ({reason}: {message}){advice}",
            method=method,
            path=path,
            status=status,
            reason=reason,
        )


def _json_body(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
    try:
        return json_object(response)
    except ValueError as exc:
        raise KubernetesError(
            f"Kubernetes {method} {path} returned {exc}",
            method=method,
            path=path,
            status=response.status_code,
        ) from exc


def _status_body(response: httpx.Response) -> tuple[str, str]:
    """Return the ``reason`` and ``message`` of a ``Status`` body, or the status text."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or str(response.status_code), response.text.strip()[:300]
    if not isinstance(data, dict):
        return response.reason_phrase or str(response.status_code), str(data)[:300]
    reason = str(data.get("reason") or response.reason_phrase or response.status_code)
    return reason, str(data.get("message") or "")
