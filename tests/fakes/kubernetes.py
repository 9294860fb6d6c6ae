"""A fake Kubernetes API server on 127.0.0.1 for the namespace actions.

It speaks the parts of the REST API that ``kubernetes.pause_namespace`` uses:

- ``GET /api/v1/namespaces/{ns}`` and ``PATCH`` with ``application/merge-patch+json`` (a null
  value deletes a label or annotation); other patch types get 415.
- ``GET /apis/apps/v1/namespaces/{ns}/deployments`` and ``.../statefulsets``: lists with
  ``limit`` and ``continue`` paging.
- ``GET``, ``PUT`` and ``PATCH`` (merge patch) of ``.../{kind}/{name}/scale``: ``autoscaling/v1``
  Scale objects. A PUT whose ``metadata.resourceVersion`` is not the current one gets 409
  Conflict, as the API server's optimistic concurrency does; negative replicas get 422.

Every request needs ``Authorization: Bearer <token>`` (401 otherwise). Errors are
``Status`` objects with ``reason`` and ``code``. ``fail_next`` scripts 429 with ``Retry-After``
or a 5xx for the next matching requests; ``requests`` records every call.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any

from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

TOKEN = "fake-kube-token-7f3a"
KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
REASONS = {
    401: "Unauthorized",
    404: "NotFound",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass
class Workload:
    kind: str
    name: str
    namespace: str
    replicas: int
    resource_version: str
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class NamespaceObject:
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    resource_version: str
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Failure:
    status: int
    method: str | None
    path_contains: str | None
    retry_after: str | None


class FakeKubernetesState:
    def __init__(self, token: str) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.versions = itertools.count(1000)
        self.namespaces: dict[str, NamespaceObject] = {}
        self.workloads: dict[tuple[str, str, str], Workload] = {}
        self.failures: deque[Failure] = deque()
        self.requests: list[tuple[str, str]] = []

    def next_version(self) -> str:
        return str(next(self.versions))


class FakeKubernetes(LoopbackFake):
    """The fake API server; use as a context manager. ``url`` goes into kubeconfigs."""

    server_name = "fake-kubernetes"

    def __init__(self, *, token: str = TOKEN) -> None:
        self.state = FakeKubernetesState(token)
        self.app = create_app(self.state)

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def token(self) -> str:
        return self.state.token

    def add_namespace(
        self,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> None:
        with self.state.lock:
            self.state.namespaces[name] = NamespaceObject(
                name, dict(labels or {}), dict(annotations or {}), self.state.next_version()
            )

    def add_workload(self, namespace: str, kind: str, name: str, replicas: int) -> None:
        with self.state.lock:
            version = self.state.next_version()
            self.state.workloads[(namespace, kind, name)] = Workload(
                kind, name, namespace, replicas, version
            )

    def replicas(self, namespace: str, kind: str, name: str) -> int:
        return self.state.workloads[(namespace, kind, name)].replicas

    def set_replicas(self, namespace: str, kind: str, name: str, replicas: int) -> None:
        """Change a workload as another client would, bumping its resourceVersion."""
        with self.state.lock:
            workload = self.state.workloads[(namespace, kind, name)]
            workload.replicas = replicas
            workload.resource_version = self.state.next_version()

    def annotations(self, namespace: str) -> dict[str, str]:
        return dict(self.state.namespaces[namespace].annotations)

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        """Fail the next ``times`` matching requests with ``status``, after the token check."""
        for _ in range(times):
            self.state.failures.append(Failure(status, method, path_contains, retry_after))

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        return [call for call in self.state.requests if method is None or call[0] == method]


def status_body(status: int, message: str, *, kind: str | None = None, name: str = "") -> Any:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": REASONS.get(status, "Unknown"),
        "code": status,
    }
    if kind:
        body["details"] = {"name": name, "group": "apps", "kind": kind}
    return body


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, **details: Any
) -> Response:
    return JSONResponse(
        status_body(status, message, **details), status_code=status, headers=headers
    )


def create_app(state: FakeKubernetesState) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def checks(request: Request, call_next: Any) -> Response:
        path = request.url.path
        with state.lock:
            state.requests.append((request.method, path))
        if request.headers.get("authorization") != f"Bearer {state.token}":
            return _error(401, "Unauthorized")
        failure = _take_failure(state, request.method, path)
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return _error(failure.status, f"injected {failure.status}", headers)
        response: Response = await call_next(request)
        return response

    @app.get("/api/v1/namespaces/{namespace}")
    def get_namespace(namespace: str) -> Response:
        with state.lock:
            found = state.namespaces.get(namespace)
            if found is None:
                return _error(404, f'namespaces "{namespace}" not found')
            return JSONResponse(_namespace_json(found))

    @app.patch("/api/v1/namespaces/{namespace}")
    async def patch_namespace(namespace: str, request: Request) -> Response:
        if request.headers.get("content-type") != "application/merge-patch+json":
            return _error(415, "the fake accepts only application/merge-patch+json")
        patch = json.loads(await request.body())
        with state.lock:
            found = state.namespaces.get(namespace)
            if found is None:
                return _error(404, f'namespaces "{namespace}" not found')
            metadata = patch.get("metadata") or {}
            _merge(found.labels, metadata.get("labels"))
            _merge(found.annotations, metadata.get("annotations"))
            found.resource_version = state.next_version()
            return JSONResponse(_namespace_json(found))

    @app.get("/apis/apps/v1/namespaces/{namespace}/{kind}")
    def list_workloads(
        namespace: str,
        kind: str,
        limit: int = 0,
        continue_token: Annotated[str, Query(alias="continue")] = "",
    ) -> Response:
        if kind not in KINDS:
            return _error(404, "the server could not find the requested resource")
        with state.lock:
            items = sorted(
                (
                    w
                    for w in state.workloads.values()
                    if w.namespace == namespace and w.kind == kind
                ),
                key=lambda w: w.name,
            )
            start = int(continue_token or 0)
            end = start + limit if limit else len(items)
            page = items[start:end]
            token = str(end) if end < len(items) else ""
            return JSONResponse(
                {
                    "kind": f"{KINDS[kind]}List",
                    "apiVersion": "apps/v1",
                    "metadata": {"resourceVersion": state.next_version(), "continue": token},
                    "items": [_workload_json(w) for w in page],
                }
            )

    @app.api_route(
        "/apis/apps/v1/namespaces/{namespace}/{kind}/{name}/scale", methods=["GET", "PUT", "PATCH"]
    )
    async def scale(namespace: str, kind: str, name: str, request: Request) -> Response:
        if kind not in KINDS:
            return _error(404, "the server could not find the requested resource")
        body = json.loads(await request.body()) if request.method != "GET" else None
        with state.lock:
            workload = state.workloads.get((namespace, kind, name))
            if workload is None:
                return _error(404, f'{kind}.apps "{name}" not found', kind=kind, name=name)
            if request.method == "GET":
                return JSONResponse(_scale_json(workload))
            return _update_scale(state, workload, request.method, body)

    return app


def _update_scale(
    state: FakeKubernetesState, workload: Workload, method: str, body: Any
) -> Response:
    metadata = body.get("metadata") or {}
    version = metadata.get("resourceVersion")
    if method == "PUT" and version and version != workload.resource_version:
        return _error(
            409,
            f'Operation cannot be fulfilled on {workload.kind}.apps "{workload.name}": the '
            "object has been modified; please apply your changes to the latest version and try "
            "again",
            kind=workload.kind,
            name=workload.name,
        )
    replicas = (body.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        return _error(
            422,
            f'Scale.autoscaling "{workload.name}" is invalid: spec.replicas: Invalid value: '
            f"{replicas!r}: must be greater than or equal to 0",
        )
    workload.replicas = replicas
    workload.resource_version = state.next_version()
    return JSONResponse(_scale_json(workload))


def _take_failure(state: FakeKubernetesState, method: str, path: str) -> Failure | None:
    with state.lock:
        for failure in list(state.failures):
            if failure.method and failure.method != method:
                continue
            if failure.path_contains and failure.path_contains not in path:
                continue
            state.failures.remove(failure)
            return failure
    return None


def _merge(target: dict[str, str], patch: dict[str, Any] | None) -> None:
    for key, value in (patch or {}).items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = str(value)


def _namespace_json(found: NamespaceObject) -> dict[str, Any]:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": found.name,
            "uid": found.uid,
            "resourceVersion": found.resource_version,
            "labels": {"kubernetes.io/metadata.name": found.name, **found.labels},
            "annotations": dict(found.annotations),
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _workload_json(workload: Workload) -> dict[str, Any]:
    return {
        "metadata": _workload_metadata(workload),
        "spec": {"replicas": workload.replicas},
        "status": {"replicas": workload.replicas, "readyReplicas": workload.replicas},
    }


def _scale_json(workload: Workload) -> dict[str, Any]:
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": _workload_metadata(workload),
        "spec": {"replicas": workload.replicas},
        "status": {"replicas": workload.replicas, "selector": f"app={workload.name}"},
    }


def _workload_metadata(workload: Workload) -> dict[str, Any]:
    return {
        "name": workload.name,
        "namespace": workload.namespace,
        "uid": workload.uid,
        "resourceVersion": workload.resource_version,
    }
