"""The Palette client's usage and quota calls against the simulator, and unit handling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from quota_helpers import AS_OF, palette_settings

from costwarden.errors import PaletteApiError, PaletteAuthError
from costwarden.simulator.generator import GPU_POOL_MAX_SIZE
from costwarden.simulator.server import SimulatorServer
from costwarden.sources.palette.client import PaletteClient
from costwarden.sources.palette.models import ResourceConsumption
from costwarden.sources.palette.usage_rows import resolve_units


@pytest.fixture
def small(start_simulator: Callable[..., SimulatorServer]) -> SimulatorServer:
    return start_simulator()


def test_resource_consumption_parses_points(small: SimulatorServer) -> None:
    with PaletteClient(palette_settings(small)) as client:
        found = client.resource_consumption(
            date(2026, 11, 12), date(2026, 11, 15), group_by="namespace", period_minutes=360
        )

    assert found.cpu_unit == "cores"
    assert found.memory_unit == "MiB"
    assert found.resources
    series = found.resources[0]
    assert series.entity.kind == "namespace"
    assert [ref.kind for ref in series.associated_resources] == ["spectrocluster"]
    assert len(series.data) == 3 * 4
    first = series.data[0]
    assert first.timestamp.isoformat() == "2026-11-12T00:00:00+00:00"
    assert first.allotted.cpu > first.usage.cpu > 0


def test_consumption_reads_millisecond_timestamps(
    start_simulator: Callable[..., SimulatorServer],
) -> None:
    sim = start_simulator(timestamp_unit="milliseconds")

    with PaletteClient(palette_settings(sim)) as client:
        found = client.resource_consumption(
            date(2026, 11, 14), date(2026, 11, 15), group_by="cluster", period_minutes=1440
        )

    assert {point.timestamp.date() for s in found.resources for point in s.data} == {
        date(2026, 11, 14)
    }


def test_namespace_quotas_and_cloud_config_parse(small: SimulatorServer) -> None:
    with PaletteClient(palette_settings(small)) as client:
        clusters = {c.metadata.name: c for c in client.search_clusters(active_only=True)}
        payments = clusters["payments-prod"]
        quotas = {item.name: item for item in client.namespace_quotas(payments.metadata.uid)}
        ml = clusters["ml-training-eks"].spec_summary.cloud_config
        assert ml is not None
        config = client.cloud_config(ml.cloud_type, ml.uid)

    ledger = quotas["ledger"].spec.resource_allocation
    assert ledger is not None
    assert ledger.cpu_cores is not None and ledger.cpu_cores > 0
    assert ledger.memory_mib is not None and ledger.memory_mib >= 1024
    assert quotas["ledger"].spec.is_regex is False

    pools = {pool.name: pool for pool in config.spec.machine_pool_config}
    gpu = pools["gpu-training"]
    assert (gpu.min_size, gpu.max_size) == (4, GPU_POOL_MAX_SIZE)
    assert gpu.instance_config is not None
    assert (gpu.instance_config.num_cpus, gpu.instance_config.memory_mib) == (8, 32 * 1024)


def test_workspaces_parse_quota(small: SimulatorServer) -> None:
    with PaletteClient(palette_settings(small)) as client:
        workspaces = client.workspaces()

    assert (workspaces.cpu_unit, workspaces.memory_unit) == ("cores", "MiB")
    assert workspaces.items
    for workspace in workspaces.items:
        quota = workspace.spec.quota
        assert quota is not None and quota.resource_allocation is not None
        assert quota.resource_allocation.cpu and quota.resource_allocation.cpu > 0
        assert workspace.spec.cluster_refs
        assert workspace.metadata.uid


def test_null_amounts_read_as_zero() -> None:
    body = {
        "cpuUnit": "cores",
        "memoryUnit": "GiB",
        "resources": [
            {
                "entity": {"uid": "n1", "name": "web", "kind": "namespace"},
                "associatedResources": None,
                "data": [{"timestamp": 1794268800, "usage": {"cpu": None, "memory": 2.5}}],
            }
        ],
    }

    parsed = ResourceConsumption.model_validate(body)

    point = parsed.resources[0].data[0]
    assert (point.usage.cpu, point.usage.memory) == (0.0, 2.5)
    assert (point.allotted.cpu, point.allotted.memory) == (0.0, 0.0)
    assert parsed.resources[0].associated_resources == []


@pytest.mark.parametrize(
    ("cpu_unit", "memory_unit", "cores", "gib"),
    [
        ("cores", "MiB", 1.0, 1 / 1024),
        ("millicores", "bytes", 0.001, 2.0**-30),
        ("CPU", "GiB", 1.0, 1.0),
        ("m", "Mi", 0.001, 1 / 1024),
        ("vcpus", "GB", 1.0, 1e9 / 2**30),
    ],
)
def test_units_convert_to_cores_and_gib(
    cpu_unit: str, memory_unit: str, cores: float, gib: float
) -> None:
    warnings: list[str] = []

    units = resolve_units(cpu_unit, memory_unit, "test", warnings.append)

    assert units.cpu == pytest.approx(cores)
    assert units.memory == pytest.approx(gib)
    assert warnings == []


def test_unknown_unit_is_rejected_with_choices() -> None:
    with pytest.raises(PaletteApiError, match=r"unknown memoryUnit 'furlongs'.*gib"):
        resolve_units("cores", "furlongs", "namespace consumption", lambda message: None)


def test_empty_unit_is_assumed_with_warning() -> None:
    warnings: list[str] = []

    units = resolve_units("", "", "cluster consumption", warnings.append)

    assert (units.cpu, units.memory) == (1.0, 1 / 1024)
    assert len(warnings) == 2
    assert "cpuUnit is empty" in warnings[0]


def test_consumption_error_names_the_call(small: SimulatorServer) -> None:
    with PaletteClient(palette_settings(small)) as client:
        with pytest.raises(PaletteApiError, match="groupBy 'pod' is not valid") as caught:
            client.resource_consumption(AS_OF.date(), AS_OF.date(), group_by="pod")

    assert caught.value.status == 400


def test_closed_spec_validator_rejects_invented_fields(
    palette_validator: Callable[[str], Any],
) -> None:
    body: dict[str, Any] = {"cpuUnit": "cores", "resources": [], "gpuUnit": "GPUs"}

    errors = list(palette_validator("v1ResourcesConsumption").iter_errors(body))

    assert len(errors) == 1
    assert "gpuUnit" in errors[0].message


def test_quota_routes_without_key_raise_auth_error(small: SimulatorServer) -> None:
    settings = palette_settings(small, api_key="not-the-key")
    with PaletteClient(settings) as client:
        with pytest.raises(PaletteAuthError, match="HTTP 401") as caught:
            client.workspaces()

    assert "not-the-key" not in str(caught.value)
    assert httpx.get(small.url + "/v1/dashboard/workspaces").status_code == 401
