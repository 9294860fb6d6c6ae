"""``kubernetes.pause_namespace``: scale a namespace's deployments and statefulsets to zero.

The action fetches the cluster's kubeconfig from Palette (``GET /v1/spectroclusters/{uid}/
assets/kubeconfig``) and talks to the Kubernetes API with it. It never pauses a namespace that
matches ``actions.kubernetes.protected_namespaces`` (Kubernetes' and Palette's system
namespaces) or carries a label of ``actions.kubernetes.critical_selectors``.

Before it scales anything, apply writes the replica counts to the namespace annotation
``costwarden.io/paused-replicas`` (JSON: ``{"deployments/web": 3, ...}``), so the workloads can
be restored from the cluster alone, even without costwarden's database. Each scale goes through
the ``autoscaling/v1`` Scale subresource with the ``resourceVersion`` just read, so a concurrent
change gets 409 Conflict instead of being overwritten. When a scale fails, apply scales the
workloads it already paused back up, removes the annotation and raises ``ActionError`` naming
each workload's outcome. Rollback checks that every paused workload is still at zero, then
restores the recorded counts and removes the annotation.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from costwarden.actions.context import ActionContext
from costwarden.actions.kubeapi import KubeClient, KubeConfig
from costwarden.actions.registry import ACTIONS, Action, ActionOutcome, ActionParams
from costwarden.domain.governance import ActionRequest
from costwarden.errors import (
    ActionError,
    ActionNotAllowedError,
    CostwardenError,
    StaleStateError,
)

logger = logging.getLogger(__name__)

PAUSED_ANNOTATION = "costwarden.io/paused-replicas"
WORKLOAD_KINDS = ("deployments", "statefulsets")
LIST_PAGE_SIZE = 500


class PauseNamespaceParams(ActionParams):
    """``kubernetes.pause_namespace`` takes no parameters: the scope names the namespace."""


def kube_client(context: ActionContext, cluster_uid: str) -> KubeClient:
    """Fetch the cluster's kubeconfig from Palette and return a client for its API server."""
    text = context.palette.get_text(f"/v1/spectroclusters/{cluster_uid}/assets/kubeconfig")
    config = KubeConfig.parse(text, source=f"kubeconfig of cluster {cluster_uid}")
    return KubeClient(
        config, context.settings.actions.kubernetes, sleep=context.sleep, cluster=cluster_uid
    )


def list_replicas(client: KubeClient, namespace: str) -> dict[str, int]:
    """Return ``{"deployments/NAME": replicas, "statefulsets/NAME": replicas}``, sorted."""
    found: dict[str, int] = {}
    for kind in WORKLOAD_KINDS:
        token = ""
        while True:
            path = f"/apis/apps/v1/namespaces/{namespace}/{kind}?limit={LIST_PAGE_SIZE}"
            if token:
                path += f"&continue={token}"
            page = client.get(path)
            for item in page.get("items") or []:
                replicas = (item.get("spec") or {}).get("replicas")
                # An omitted spec.replicas defaults to 1 in apps/v1.
                found[f"{kind}/{item['metadata']['name']}"] = 1 if replicas is None else replicas
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
    return dict(sorted(found.items()))


def _scale_path(namespace: str, workload: str) -> str:
    kind, name = workload.split("/", 1)
    return f"/apis/apps/v1/namespaces/{namespace}/{kind}/{name}/scale"


def scale(client: KubeClient, namespace: str, workload: str, *, expected: int, to: int) -> None:
    """Set a workload's replicas from ``expected`` to ``to`` through its Scale subresource.

    Raises ``StaleStateError`` when the replicas read are not ``expected``. The PUT carries the
    ``resourceVersion`` read, so a change in between fails with 409 Conflict.
    """
    path = _scale_path(namespace, workload)
    current = client.get(path)
    replicas = (current.get("spec") or {}).get("replicas", 0)
    if replicas != expected:
        raise StaleStateError(
            f"{workload} in namespace {namespace} has {replicas} replicas, expected {expected}"
        )
    if replicas == to:
        return
    metadata = current.get("metadata") or {}
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": metadata.get("name"),
            "namespace": namespace,
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "spec": {"replicas": to},
    }
    client.put(path, body)


def check_pausable(
    context: ActionContext, namespace: str, labels: Mapping[str, str], request: ActionRequest
) -> None:
    """Raise ``ActionNotAllowedError`` for a protected or critical namespace."""
    settings = context.settings.actions.kubernetes
    for pattern in settings.protected_namespaces:
        if fnmatch.fnmatchcase(namespace, pattern):
            raise ActionNotAllowedError(
                f"namespace {namespace} matches the protected pattern {pattern!r} in "
                "actions.kubernetes.protected_namespaces; system namespaces are never paused"
            )
    merged = {**dict(request.scope.labels), **dict(labels)}
    for selector in settings.critical_selectors:
        key, _, value = selector.partition("=")
        if key in merged and (not value or merged[key] == value):
            raise ActionNotAllowedError(
                f"namespace {namespace} is marked critical by the label {key}={merged[key]} "
                f"(actions.kubernetes.critical_selectors); critical namespaces are never paused"
            )


@ACTIONS.register("kubernetes.pause_namespace")
class PauseNamespace(Action):
    """Scale a namespace's deployments and statefulsets to zero, recording their replicas."""

    params_class = PauseNamespaceParams
    scope_kinds: ClassVar[tuple[str, ...]] = ("namespace",)
    safe = True
    reversible = True

    def dry_run(self, request: ActionRequest, context: ActionContext) -> ActionOutcome:
        with self._open(request, context) as (client, namespace):
            replicas = self._prepare(request, context, client, namespace)
        paused = {workload: 0 for workload in replicas}
        running = sum(1 for count in replicas.values() if count > 0)
        return ActionOutcome(
            summary=f"would scale {running} workloads in namespace {namespace} to zero",
            before={"namespace": namespace, "replicas": replicas},
            after={"namespace": namespace, "replicas": paused},
            changed=running > 0,
        )

    def apply(self, request: ActionRequest, context: ActionContext) -> ActionOutcome:
        with self._open(request, context) as (client, namespace):
            replicas = self._prepare(request, context, client, namespace)
            running = {workload: count for workload, count in replicas.items() if count > 0}
            if running:
                self._pause(client, namespace, running)
        return ActionOutcome(
            summary=f"scaled {len(running)} workloads in namespace {namespace} to zero",
            before={"namespace": namespace, "replicas": replicas},
            after={"namespace": namespace, "replicas": {workload: 0 for workload in replicas}},
            undo={"namespace": namespace, "replicas": running},
            changed=bool(running),
        )

    def rollback(
        self, request: ActionRequest, undo: Mapping[str, Any], context: ActionContext
    ) -> ActionOutcome:
        with self._open(request, context) as (client, namespace):
            if "replicas" in undo:
                recorded = {str(name): int(count) for name, count in undo["replicas"].items()}
            else:
                recorded = self._annotation(client, namespace)
            self._check_still_paused(client, namespace, recorded)
            for workload, count in recorded.items():
                scale(client, namespace, workload, expected=0, to=count)
            self._annotate(client, namespace, None)
        logger.info("restored %d workloads in namespace %s", len(recorded), namespace)
        return ActionOutcome(
            summary=f"restored {len(recorded)} workloads in namespace {namespace}",
            before={"namespace": namespace, "replicas": {name: 0 for name in recorded}},
            after={"namespace": namespace, "replicas": recorded},
            changed=bool(recorded),
        )

    def _open(self, request: ActionRequest, context: ActionContext) -> _Session:
        scope = request.scope
        if scope.kind not in self.scope_kinds:
            raise ActionError(f"{request.action} applies to namespace scopes, not {scope.kind!r}")
        namespace = scope.namespace or scope.name
        if not scope.cluster_uid or not namespace:
            raise ActionError(f"{request.action}: the scope needs cluster_uid and namespace")
        return _Session(kube_client(context, scope.cluster_uid), namespace)

    def _prepare(
        self,
        request: ActionRequest,
        context: ActionContext,
        client: KubeClient,
        namespace: str,
    ) -> dict[str, int]:
        """Check the namespace may be paused and is unchanged; return its replica counts."""
        found = client.get(f"/api/v1/namespaces/{namespace}")
        metadata = found.get("metadata") or {}
        check_pausable(context, namespace, metadata.get("labels") or {}, request)
        if PAUSED_ANNOTATION in (metadata.get("annotations") or {}):
            raise ActionError(
                f"namespace {namespace} is already paused (annotation {PAUSED_ANNOTATION}); roll "
                "back the earlier pause first"
            )

        replicas = list_replicas(client, namespace)
        expected = request.expected.get("replicas")
        unknown = sorted(set(request.expected) - {"replicas"})
        if unknown:
            raise ActionError(
                f"{request.action}: expected state has unknown fields {unknown}; use replicas"
            )
        if expected is not None and dict(expected) != replicas:
            raise StaleStateError(
                f"namespace {namespace} changed since the recommendation: replicas are "
                f"{replicas}, expected {dict(expected)}; nothing was changed"
            )
        return replicas

    def _pause(self, client: KubeClient, namespace: str, running: dict[str, int]) -> None:
        self._annotate(client, namespace, running)
        paused: list[str] = []
        for workload, count in running.items():
            try:
                scale(client, namespace, workload, expected=count, to=0)
            except CostwardenError as exc:
                report = self._undo_partial(client, namespace, running, paused)
                raise ActionError(
                    f"pausing namespace {namespace} failed at {workload}: {exc}. {report}"
                ) from exc
            paused.append(workload)
            logger.info("scaled %s in namespace %s from %d to 0", workload, namespace, count)

    def _undo_partial(
        self, client: KubeClient, namespace: str, running: dict[str, int], paused: list[str]
    ) -> str:
        """Scale the already paused workloads back up; return what happened, for the error."""
        failed: list[str] = []
        for workload in paused:
            try:
                scale(client, namespace, workload, expected=0, to=running[workload])
            except CostwardenError as exc:
                logger.error("could not restore %s in namespace %s: %s", workload, namespace, exc)
                failed.append(f"{workload} ({exc})")
        if failed:
            return (
                f"Restored {len(paused) - len(failed)} of {len(paused)} paused workloads; still "
                f"at zero: {', '.join(failed)}. The annotation {PAUSED_ANNOTATION} keeps the "
                "replica counts to restore by hand"
            )
        try:
            self._annotate(client, namespace, None)
        except CostwardenError as exc:
            return (
                f"Restored all {len(paused)} paused workloads, but removing the annotation "
                f"{PAUSED_ANNOTATION} failed: {exc}"
            )
        return f"Restored all {len(paused)} workloads paused before the failure"

    def _annotate(
        self, client: KubeClient, namespace: str, replicas: dict[str, int] | None
    ) -> None:
        value = None if replicas is None else json.dumps(replicas, sort_keys=True)
        body = {"metadata": {"annotations": {PAUSED_ANNOTATION: value}}}
        client.merge_patch(f"/api/v1/namespaces/{namespace}", body)

    def _annotation(self, client: KubeClient, namespace: str) -> dict[str, int]:
        found = client.get(f"/api/v1/namespaces/{namespace}")
        text = ((found.get("metadata") or {}).get("annotations") or {}).get(PAUSED_ANNOTATION)
        if not text:
            raise ActionError(
                f"namespace {namespace} has no {PAUSED_ANNOTATION} annotation and the run has no "
                "recorded replica counts; there is nothing to restore"
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ActionError(
                f"annotation {PAUSED_ANNOTATION} of namespace {namespace} is not JSON: {exc}"
            ) from exc
        return {str(workload): int(count) for workload, count in data.items()}

    def _check_still_paused(
        self, client: KubeClient, namespace: str, recorded: Mapping[str, int]
    ) -> None:
        current = list_replicas(client, namespace)
        drift = [
            f"{workload} has {current.get(workload, 'no')} replicas"
            if workload in current
            else f"{workload} no longer exists"
            for workload in recorded
            if current.get(workload) != 0
        ]
        if drift:
            raise StaleStateError(
                f"namespace {namespace} changed since it was paused: {'; '.join(drift)}; nothing "
                "was restored. Restore by hand, or scale those workloads to 0 and roll back again"
            )


class _Session:
    """A ``with`` block around a Kubernetes client and the namespace it works on."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def __enter__(self) -> tuple[KubeClient, str]:
        return self.client, self.namespace

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()
