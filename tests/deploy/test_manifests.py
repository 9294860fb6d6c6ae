"""The Helm chart, its plain-manifest rendering and the Dockerfile.

No helm binary runs here, so deploy/kubernetes contains the chart's default rendering written by
hand. These tests validate those manifests against the Kubernetes schemas and check that they
agree with the chart's templates and values.yaml on the fields that matter.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from costwarden.budgets.loader import parse_budgets
from costwarden.cli.serve import HTTP_SHUTDOWN_SECONDS
from costwarden.config import Settings, load_settings
from costwarden.service.app import TASK_STOP_SECONDS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CHART = DEPLOY / "helm" / "costwarden"
MANIFESTS = DEPLOY / "kubernetes"
CUSTOM_KINDS = {"ServiceMonitor"}
"""Kinds of custom resources, which kubernetes-validate has no schema for."""


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        for doc in _documents(path):
            found[doc["kind"]] = doc
    return found


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _chart() -> dict[str, Any]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def _container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("path", sorted(MANIFESTS.rglob("*.yaml")), ids=lambda path: path.name)
def test_manifest_validates(path: Path) -> None:
    version = kubernetes_validate.latest_version()
    for doc in _documents(path):
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)


def test_invalid_manifest_fails_validation() -> None:
    deployment = copy.deepcopy(_manifests()["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_every_template_has_manifest() -> None:
    manifests = _manifests()
    for template in sorted((CHART / "templates").glob("*.yaml")):
        match = re.search(r"^kind: (\w+)$", template.read_text(), re.MULTILINE)
        assert match is not None, f"{template.name} has no kind"
        assert match.group(1) in manifests, f"no manifest of kind {match.group(1)}"


def test_template_values_exist() -> None:
    values = _values()
    for template in sorted((CHART / "templates").iterdir()):
        for reference in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", template.read_text()):
            node: Any = values
            for part in reference.split("."):
                assert isinstance(node, dict), f"{template.name}: .Values.{reference}"
                assert part in node, f"{template.name}: .Values.{reference} is not in values.yaml"
                node = node[part]


def test_values_match_schema() -> None:
    jsonschema.Draft7Validator.check_schema(_schema())

    jsonschema.Draft7Validator(_schema()).validate(_values())


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"image": {"repository": ""}}, "image.repository"),
        ({"service": {"type": "Ingress", "port": 8080}}, "service.type"),
        ({"containerPort": 80}, "containerPort"),
        ({"config": {"service": {"port": 8080}}}, "config.service.port"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "podSecurityContext.runAsNonRoot"),
        ({"secret": {"eventSecrets": ["not-a-whsec"]}}, "secret.eventSecrets.0"),
        ({"secret": {"apiKeys": [{"name": "ci"}]}}, "secret.apiKeys.0"),
        ({"secret": {"databaseUrl": "mysql://db"}}, "secret.databaseUrl"),
        ({"serviceMonitor": {"interval": "often"}}, "serviceMonitor.interval"),
        ({"replicas": 2}, ""),
    ],
)
def test_bad_values_fail_schema(change: dict[str, Any], path: str) -> None:
    values = _values()
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value

    errors = list(jsonschema.Draft7Validator(_schema()).iter_errors(values))

    assert errors
    assert path in {".".join(str(part) for part in error.absolute_path) for error in errors}


def test_deployment_matches_values() -> None:
    values = _values()
    manifests = _manifests()
    container = _container(manifests)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]

    assert container["image"] == f"{values['image']['repository']}:{_chart()['appVersion']}"
    assert container["imagePullPolicy"] == values["image"]["pullPolicy"]
    assert container["ports"][0]["containerPort"] == values["containerPort"]
    assert container["args"] == ["serve"]
    assert container["resources"] == values["resources"]
    assert container["securityContext"] == values["securityContext"]
    assert pod["securityContext"] == values["podSecurityContext"]
    assert manifests["Deployment"]["spec"]["replicas"] == values["replicaCount"]
    assert pod["terminationGracePeriodSeconds"] == values["terminationGracePeriodSeconds"]
    for name, field in (
        ("liveness", "livenessProbe"),
        ("readiness", "readinessProbe"),
        ("startup", "startupProbe"),
    ):
        expected = dict(values["probes"][name])
        probe = container[field]
        assert probe["httpGet"] == {"path": expected.pop("path"), "port": "http"}
        assert {key: probe[key] for key in expected} == expected


def test_deployment_hardened() -> None:
    manifests = _manifests()
    container = _container(manifests)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/costwarden", "/etc/costwarden"} <= mounts


def test_rbac_reads_only_own_configmap() -> None:
    manifests = _manifests()

    rules = manifests["Role"]["rules"]

    assert rules == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [manifests["ConfigMap"]["metadata"]["name"]],
            "verbs": ["get", "watch"],
        }
    ]
    assert manifests["RoleBinding"]["roleRef"]["name"] == manifests["Role"]["metadata"]["name"]
    subject = manifests["RoleBinding"]["subjects"][0]
    assert subject["name"] == manifests["ServiceAccount"]["metadata"]["name"]


def test_service_and_monitor_target_pods() -> None:
    manifests = _manifests()
    values = _values()
    pod_labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]

    service = manifests["Service"]["spec"]
    monitor = manifests["ServiceMonitor"]["spec"]

    assert service["selector"].items() <= pod_labels.items()
    assert service["ports"][0]["port"] == values["service"]["port"]
    assert service["ports"][0]["targetPort"] == "http"
    assert (
        monitor["selector"]["matchLabels"].items()
        <= manifests["Service"]["metadata"]["labels"].items()
    )
    assert monitor["endpoints"][0]["path"] == "/metrics"
    assert monitor["endpoints"][0]["interval"] == values["serviceMonitor"]["interval"]


def test_configmap_matches_values() -> None:
    data = _manifests()["ConfigMap"]["data"]
    values = _values()

    expected = copy.deepcopy(values["config"])
    expected["service"]["port"] = values["containerPort"]
    assert yaml.safe_load(data["config.yaml"]) == expected
    assert yaml.safe_load(data["budgets.yaml"]) == values["budgets"]
    assert yaml.safe_load(data["policies.yaml"]) == values["policies"]
    assert parse_budgets(data["budgets.yaml"], "budgets.yaml") == []


def test_secret_keys_match_template() -> None:
    template = (CHART / "templates" / "secret.yaml").read_text()
    keys = set(re.findall(r"^  (COSTWARDEN_[A-Z_]+):", template, re.MULTILINE))

    manifest = _manifests()["Secret"]

    assert keys == {
        "COSTWARDEN_DATABASE_URL",
        "COSTWARDEN_PALETTE_API_KEY",
        "COSTWARDEN_SERVICE_PALETTE_WEBHOOK_SECRET",
        "COSTWARDEN_SERVICE_EVENT_SECRETS",
        "COSTWARDEN_SERVICE_API_KEYS",
    }
    # The default values set no secret, so the rendered Secret has no keys.
    assert not manifest.get("stringData")
    assert not manifest.get("data")


def test_secret_keys_only_when_set() -> None:
    """Each key of the Secret template sits inside a ``with`` block on its own value."""
    lines = (CHART / "templates" / "secret.yaml").read_text().splitlines()
    guards = {
        "COSTWARDEN_DATABASE_URL": "databaseUrl",
        "COSTWARDEN_PALETTE_API_KEY": "paletteApiKey",
        "COSTWARDEN_SERVICE_PALETTE_WEBHOOK_SECRET": "paletteWebhookSecret",
        "COSTWARDEN_SERVICE_EVENT_SECRETS": "eventSecrets",
        "COSTWARDEN_SERVICE_API_KEYS": "apiKeys",
    }
    for index, line in enumerate(lines):
        match = re.match(r"^  (COSTWARDEN_[A-Z_]+):", line)
        if match is None:
            continue
        value = guards[match.group(1)]
        assert lines[index - 1].strip() == f"{{{{- with .Values.secret.{value} }}}}", line
        assert lines[index + 1].strip() == "{{- end }}", line
    extra = lines.index("  {{- range $name, $value := .Values.secret.extraEnv }}")
    assert lines[extra + 1].strip() == "{{- if $value }}"


def test_secret_keeps_config_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Secrets set in the config value survive the default Secret in the environment."""
    config = yaml.safe_load(_manifests()["ConfigMap"]["data"]["config.yaml"])
    config["service"]["event_secrets"] = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    config["service"]["api_keys"] = [{"name": "ci", "key": "k-1", "role": "admin"}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("COSTWARDEN_CONFIG", str(path))
    for key, value in (_manifests()["Secret"].get("stringData") or {}).items():
        monkeypatch.setenv(key, value)

    settings = load_settings(path)

    assert len(settings.service.event_secrets) == 1
    assert [key.name for key in settings.service.api_keys] == ["ci"]


def test_secret_keys_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each key the Secret template can write is the environment variable of one setting."""
    template = (CHART / "templates" / "secret.yaml").read_text()
    samples = {
        "COSTWARDEN_DATABASE_URL": "postgresql+psycopg://costwarden@db:5432/costwarden",
        "COSTWARDEN_PALETTE_API_KEY": "palette-key-1234",
        "COSTWARDEN_SERVICE_PALETTE_WEBHOOK_SECRET": "palette-secret",
        "COSTWARDEN_SERVICE_EVENT_SECRETS": '["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]',
        "COSTWARDEN_SERVICE_API_KEYS": '[{"name": "ci", "key": "k-1", "role": "admin"}]',
    }
    for key in re.findall(r"^  (COSTWARDEN_[A-Z_]+):", template, re.MULTILINE):
        monkeypatch.setenv(key, samples[key])
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)

    settings = Settings()

    assert settings.database_url == samples["COSTWARDEN_DATABASE_URL"]
    assert settings.palette.api_key is not None
    assert settings.service.palette_webhook_secret is not None
    assert len(settings.service.event_secrets) == 1
    assert settings.service.api_keys[0].role == "admin"


def test_configmap_settings_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(_manifests()["ConfigMap"]["data"]["config.yaml"])
    monkeypatch.setenv("COSTWARDEN_CONFIG", str(config))
    for key, value in (_manifests()["Secret"].get("stringData") or {}).items():
        monkeypatch.setenv(key, value)

    settings = load_settings(config)

    assert settings.service.host == "0.0.0.0"
    assert settings.service.port == _values()["containerPort"]
    assert settings.budgets_file == Path("/etc/costwarden/budgets.yaml")
    assert settings.database_url == "sqlite:////var/lib/costwarden/costwarden.db"
    assert settings.service.event_secrets == []


def test_port_has_one_source() -> None:
    values = _values()
    template = (CHART / "templates" / "configmap.yaml").read_text()

    assert "port" not in values["config"]["service"]
    assert '$_ := set $service "port" (int .Values.containerPort)' in template
    assert "toYaml $config" in template
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert re.search(r"^ +args:\n +- serve\n +ports:$", deployment, re.MULTILINE)


def test_termination_grace_covers_shutdown(tmp_path: Path) -> None:
    """Kubernetes waits for the worst-case shutdown: HTTP, then tasks, then the pass grace."""
    config = tmp_path / "config.yaml"
    config.write_text(_manifests()["ConfigMap"]["data"]["config.yaml"])
    grace = load_settings(config).service.shutdown_grace_seconds
    worst_case = HTTP_SHUTDOWN_SECONDS + TASK_STOP_SECONDS + grace
    pod = _manifests()["Deployment"]["spec"]["template"]["spec"]

    assert _values()["terminationGracePeriodSeconds"] > worst_case
    assert pod["terminationGracePeriodSeconds"] > worst_case


def test_dockerfile_runs_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()

    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["python:3.11-slim"] * 2
    assert "USER 10001:10001" in text
    assert 'ENTRYPOINT ["costwarden"]' in text
    assert '"serve", "--host", "0.0.0.0"' in text
    assert (DEPLOY / "Dockerfile.dockerignore").exists()
