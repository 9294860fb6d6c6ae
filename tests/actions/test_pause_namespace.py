"""``kubernetes.pause_namespace`` against the fake Kubernetes API, reached through the kubeconfig
that the simulator serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from action_helpers import SleepRecorder, action_settings, simulator_settings
from fakes.kubernetes import FakeKubernetes

from costwarden.actions.context import ActionContext
from costwarden.actions.kubeapi import KubeConfig
from costwarden.actions.kubernetes import PAUSED_ANNOTATION, PauseNamespace
from costwarden.domain.governance import ActionRequest, ActionScope
from costwarden.errors import (
    ActionError,
    ActionNotAllowedError,
    KubernetesError,
    StaleStateError,
)
from costwarden.simulator.server import SimulatorServer

NAMESPACE = "preview-42"


@pytest.fixture
def workloads(kube: FakeKubernetes) -> FakeKubernetes:
    kube.add_namespace(NAMESPACE, labels={"team": "web"})
    kube.add_workload(NAMESPACE, "deployments", "api", 3)
    kube.add_workload(NAMESPACE, "deployments", "idle-worker", 0)
    kube.add_workload(NAMESPACE, "deployments", "web", 2)
    kube.add_workload(NAMESPACE, "statefulsets", "cache", 1)
    kube.add_workload("other", "deployments", "api", 5)
    return kube


def pause_request(
    sim: SimulatorServer, namespace: str = NAMESPACE, labels: dict[str, str] | None = None
) -> ActionRequest:
    cluster = sim.state.fleet.clusters[0]
    return ActionRequest(
        action="kubernetes.pause_namespace",
        scope=ActionScope(
            kind="namespace",
            cluster_uid=cluster.uid,
            cluster=cluster.name,
            namespace=namespace,
            labels=labels or {},
        ),
        params={},
        subject_kind="recommendation",
        subject_id="rec-idle-namespace",
    )


def replicas(kube: FakeKubernetes) -> dict[str, int]:
    return {
        "api": kube.replicas(NAMESPACE, "deployments", "api"),
        "web": kube.replicas(NAMESPACE, "deployments", "web"),
        "cache": kube.replicas(NAMESPACE, "statefulsets", "cache"),
        "other/api": kube.replicas("other", "deployments", "api"),
    }


def test_pause_and_restore(
    sim: SimulatorServer, context: ActionContext, workloads: FakeKubernetes
) -> None:
    request = pause_request(sim)

    outcome = PauseNamespace().apply(request, context)

    assert replicas(workloads) == {"api": 0, "web": 0, "cache": 0, "other/api": 5}
    recorded = {"deployments/api": 3, "deployments/web": 2, "statefulsets/cache": 1}
    assert outcome.undo == {"namespace": NAMESPACE, "replicas": recorded}
    assert outcome.before["replicas"]["deployments/idle-worker"] == 0
    assert json.loads(workloads.annotations(NAMESPACE)[PAUSED_ANNOTATION]) == recorded

    PauseNamespace().rollback(request, outcome.undo, context)

    assert replicas(workloads) == {"api": 3, "web": 2, "cache": 1, "other/api": 5}
    assert PAUSED_ANNOTATION not in workloads.annotations(NAMESPACE)


def test_dry_run_changes_nothing(
    sim: SimulatorServer, context: ActionContext, workloads: FakeKubernetes
) -> None:
    outcome = PauseNamespace().dry_run(pause_request(sim), context)

    assert outcome.summary == f"would scale 3 workloads in namespace {NAMESPACE} to zero"
    assert workloads.calls("PUT") == []
    assert workloads.calls("PATCH") == []


def test_restore_from_annotation_alone(
    sim: SimulatorServer, context: ActionContext, workloads: FakeKubernetes
) -> None:
    request = pause_request(sim)
    PauseNamespace().apply(request, context)

    PauseNamespace().rollback(request, {}, context)

    assert replicas(workloads) == {"api": 3, "web": 2, "cache": 1, "other/api": 5}


@pytest.mark.parametrize("namespace", ["kube-system", "default", "cluster-63d2a1", "cert-manager"])
def test_system_namespaces_are_refused(
    sim: SimulatorServer, context: ActionContext, kube: FakeKubernetes, namespace: str
) -> None:
    kube.add_namespace(namespace)
    kube.add_workload(namespace, "deployments", "core", 2)

    with pytest.raises(ActionNotAllowedError, match="protected"):
        PauseNamespace().apply(pause_request(sim, namespace), context)
    assert kube.replicas(namespace, "deployments", "core") == 2


def test_critical_label_is_refused(
    sim: SimulatorServer, context: ActionContext, workloads: FakeKubernetes
) -> None:
    workloads.add_namespace("payments", labels={"costwarden.io/critical": "true"})
    workloads.add_workload("payments", "deployments", "ledger", 4)

    with pytest.raises(ActionNotAllowedError, match="critical"):
        PauseNamespace().apply(pause_request(sim, "payments"), context)
    with pytest.raises(ActionNotAllowedError, match="critical"):
        PauseNamespace().apply(
            pause_request(sim, labels={"costwarden.io/critical": "true"}), context
        )
    assert workloads.replicas("payments", "deployments", "ledger") == 4
    assert workloads.calls("PUT") == []


def test_partial_failure_restores_scaled(
    sim: SimulatorServer, context: ActionContext, workloads: FakeKubernetes
) -> None:
    workloads.fail_next(500, times=4, method="PUT", path_contains="/deployments/web/scale")

    with pytest.raises(ActionError) as caught:
        PauseNamespace().apply(pause_request(sim), context)

    message = str(caught.value)
    assert "failed at deployments/web" in message
    assert "Restored all 1 workloads paused before the failure" in message
    assert replicas(workloads) == {"api": 3, "web": 2, "cache": 1, "other/api": 5}
    assert PAUSED_ANNOTATION not in workloads.annotations(NAMESPACE)


def test_conflict_is_not_overwritten(
    sim: SimulatorServer, context: ActionContext, workloads: FakeKubernetes
) -> None:
    request = pause_request(sim)
    outcome = PauseNamespace().apply(request, context)
    workloads.set_replicas(NAMESPACE, "deployments", "web", 4)

    with pytest.raises(StaleStateError, match="deployments/web has 4 replicas"):
        PauseNamespace().rollback(request, outcome.undo, context)

    assert replicas(workloads)["api"] == 0
    assert PAUSED_ANNOTATION in workloads.annotations(NAMESPACE)


def test_already_paused_is_refused(
    sim: SimulatorServer, context: ActionContext, workloads: FakeKubernetes
) -> None:
    PauseNamespace().apply(pause_request(sim), context)

    with pytest.raises(ActionError, match="already paused"):
        PauseNamespace().apply(pause_request(sim), context)


def test_stale_replicas_are_refused(
    sim: SimulatorServer, context: ActionContext, workloads: FakeKubernetes
) -> None:
    request = pause_request(sim)
    stale = ActionRequest(
        action=request.action,
        scope=request.scope,
        params={},
        subject_kind="recommendation",
        subject_id="rec-idle-namespace",
        expected={"replicas": {"deployments/api": 1}},
    )

    with pytest.raises(StaleStateError, match="changed since the recommendation"):
        PauseNamespace().apply(stale, context)
    assert workloads.calls("PUT") == []


def test_rate_limit_waits_retry_after(
    sim: SimulatorServer,
    context: ActionContext,
    workloads: FakeKubernetes,
    sleeps: SleepRecorder,
) -> None:
    workloads.fail_next(429, method="PUT", retry_after="2")
    workloads.fail_next(503, method="GET", path_contains="/statefulsets")

    PauseNamespace().apply(pause_request(sim), context)

    assert replicas(workloads)["api"] == 0
    assert replicas(workloads)["cache"] == 0
    assert sorted(sleeps.waits) == [0.5, 2.0]


def test_wrong_token_is_unauthorized(
    kube: FakeKubernetes, workloads: FakeKubernetes, tmp_path: Path
) -> None:
    settings = simulator_settings(kube, kubernetes_token="stolen-token")
    with SimulatorServer(settings) as sim:
        context = ActionContext.from_settings(action_settings(sim, tmp_path))
        with context, pytest.raises(KubernetesError) as caught:
            PauseNamespace().apply(pause_request(sim), context)

    assert caught.value.status == 401
    assert "credentials were rejected" in str(caught.value)


def test_kubeconfig_client_certificate_and_ca() -> None:
    text = """
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: "Q0EgUEVN"}
users:
- name: u
  user: {client-certificate-data: "Q0VSVA==", client-key-data: "S0VZ"}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
"""

    config = KubeConfig.parse(text)

    assert config.server == "https://10.0.0.1:6443"
    assert config.ca_pem == b"CA PEM"
    assert config.client_cert_pem == b"CERT"
    assert config.client_key_pem == b"KEY"
    assert config.token is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[", "not valid YAML"),
        ("- a", "not a kubeconfig"),
        ("current-context: x\ncontexts: []", "no entry 'x' in contexts"),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'ftp://h'}}]\nusers: [{name: u, user: {}}]",
            "not an http(s) URL",
        ),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
            "users: [{name: u, user: {exec: {command: aws}}}]",
            "exec plugin",
        ),
    ],
)
def test_invalid_kubeconfig(text: str, fragment: str) -> None:
    with pytest.raises(KubernetesError, match="kubeconfig") as caught:
        KubeConfig.parse(text)
    assert fragment in str(caught.value)
