"""Palette actions against the simulator over real HTTP: dry run, apply, stale state, rollback."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from action_helpers import (
    NOW,
    SleepRecorder,
    action_settings,
    current_pool,
    pick_pool,
    pool_request,
    writes,
)
from pydantic import ValidationError

from costwarden.actions.context import ActionContext
from costwarden.actions.palette import (
    ResizePool,
    SetCapacityType,
    SetInstanceType,
    TagCluster,
    expected_state,
)
from costwarden.domain.governance import ActionRequest, ActionScope
from costwarden.errors import (
    ActionError,
    PaletteApiError,
    PaletteAuthError,
    StaleStateError,
)
from costwarden.simulator.server import SimulatorServer


def test_resize_dry_run_writes_nothing(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim)
    request = pool_request(cluster, pool, "palette.resize_pool", {"size": 0}, {})

    outcome = ResizePool().dry_run(request, context)

    assert outcome.before["size"] == pool.size
    assert outcome.after["size"] == 0
    assert outcome.summary.startswith("would change size")
    assert outcome.undo == {}
    assert writes(sim) == []


def test_resize_apply_and_rollback(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, autoscaling=True)
    target = pool.min_size
    request = pool_request(
        cluster, pool, "palette.resize_pool", {"size": target}, {"size": pool.size}
    )

    applied = ResizePool().apply(request, context)

    assert current_pool(sim, cluster.uid, pool.name).size == target
    assert current_pool(sim, cluster.uid, pool.name).max_size == pool.max_size
    assert applied.undo["before"] == {"size": pool.size}
    assert applied.undo["after"] == {"size": target}
    assert applied.undo["state"] == {**applied.before, "size": target}
    assert applied.changed

    restored = ResizePool().rollback(request, applied.undo, context)

    assert current_pool(sim, cluster.uid, pool.name).size == pool.size
    assert restored.after["size"] == pool.size
    assert [entry[0] for entry in writes(sim)] == ["PUT", "PUT"]


def test_resize_fixed_pool_moves_limits(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, autoscaling=False)
    request = pool_request(
        cluster,
        pool,
        "palette.resize_pool",
        {"size": pool.size + 2},
        {"size": pool.size, "min_size": pool.min_size, "max_size": pool.max_size},
    )

    ResizePool().apply(request, context)

    changed = current_pool(sim, cluster.uid, pool.name)
    assert (changed.size, changed.min_size, changed.max_size) == (pool.size + 2,) * 3


def test_resize_outside_autoscaler_limits(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, autoscaling=True)
    request = pool_request(
        cluster, pool, "palette.resize_pool", {"size": pool.max_size + 1}, {"size": pool.size}
    )

    with pytest.raises(ActionError, match="outside the pool's autoscaler limits"):
        ResizePool().apply(request, context)
    assert writes(sim) == []


def test_resize_refuses_stale_size(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, autoscaling=True)
    request = pool_request(
        cluster, pool, "palette.resize_pool", {"size": pool.min_size}, {"size": pool.size + 1}
    )

    with pytest.raises(StaleStateError) as caught:
        ResizePool().apply(request, context)

    message = str(caught.value)
    assert f"size is {pool.size}" in message
    assert f"expected {pool.size + 1}" in message
    assert writes(sim) == []


def test_apply_requires_expected_state(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, autoscaling=True)
    request = pool_request(cluster, pool, "palette.resize_pool", {"size": pool.min_size}, {})

    with pytest.raises(ActionError, match="expected state lacks size"):
        ResizePool().apply(request, context)
    assert writes(sim) == []


def test_unknown_expected_field(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim)
    request = pool_request(cluster, pool, "palette.resize_pool", {"size": 1}, {"nodes": 3})

    with pytest.raises(ActionError, match="unknown fields"):
        ResizePool().dry_run(request, context)


def test_rollback_refuses_after_drift(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, autoscaling=True)
    request = pool_request(
        cluster, pool, "palette.resize_pool", {"size": pool.min_size}, {"size": pool.size}
    )
    applied = ResizePool().apply(request, context)
    someone_else = pool_request(
        cluster, pool, "palette.resize_pool", {"size": pool.max_size}, {"size": pool.min_size}
    )
    ResizePool().apply(someone_else, context)

    with pytest.raises(StaleStateError, match=f"size is {pool.max_size}"):
        ResizePool().rollback(request, applied.undo, context)

    assert current_pool(sim, cluster.uid, pool.name).size == pool.max_size
    assert len(writes(sim, "PUT")) == 2


def test_set_instance_type_and_back(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, provider="azure")
    new_type = "Standard_D2s_v5"
    request = pool_request(
        cluster,
        pool,
        "palette.set_instance_type",
        {"instance_type": new_type},
        {"instance_type": pool.instance_type},
    )

    applied = SetInstanceType().apply(request, context)

    assert current_pool(sim, cluster.uid, pool.name).instance_type == new_type
    assert current_pool(sim, cluster.uid, pool.name).size == pool.size
    SetInstanceType().rollback(request, applied.undo, context)
    assert current_pool(sim, cluster.uid, pool.name).instance_type == pool.instance_type


def test_unknown_instance_type_fails_in_palette(
    sim: SimulatorServer, context: ActionContext
) -> None:
    cluster, pool = pick_pool(sim, provider="gcp")
    request = pool_request(
        cluster,
        pool,
        "palette.set_instance_type",
        {"instance_type": "n9-imaginary-4"},
        {"instance_type": pool.instance_type},
    )

    with pytest.raises(PaletteApiError) as caught:
        SetInstanceType().apply(request, context)

    assert caught.value.status == 422
    assert current_pool(sim, cluster.uid, pool.name).instance_type == pool.instance_type


def test_set_capacity_type_on_aws(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, provider="aws")
    request = pool_request(
        cluster,
        pool,
        "palette.set_capacity_type",
        {"capacity_type": "spot"},
        {"capacity_type": pool.capacity_type},
    )

    applied = SetCapacityType().apply(request, context)

    assert current_pool(sim, cluster.uid, pool.name).capacity_type == "spot"
    SetCapacityType().rollback(request, applied.undo, context)
    assert current_pool(sim, cluster.uid, pool.name).capacity_type == pool.capacity_type


class AppliedThenBadGateway(httpx.AsyncBaseTransport):
    """Forward every request to the simulator, but return 502 for a PUT that it applied, as a
    proxy that loses the response does."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.method != "PUT":
            return response
        await response.aclose()
        return httpx.Response(502, json={"code": "BadGateway", "message": "upstream reset"})

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_applied_put_with_error_counts_as_written(
    sim: SimulatorServer, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    cluster, pool = pick_pool(sim, provider="aws")
    request = pool_request(
        cluster, pool, "palette.set_capacity_type", {"capacity_type": "spot"},
        {"capacity_type": pool.capacity_type},
    )
    settings = action_settings(sim, tmp_path)
    with ActionContext.from_settings(settings, sleep=sleeps, clock=lambda: NOW,
                                     palette_transport=AppliedThenBadGateway()) as context:
        outcome = SetCapacityType().apply(request, context)

    assert outcome.changed
    assert outcome.after["capacity_type"] == "spot"
    assert current_pool(sim, cluster.uid, pool.name).capacity_type == "spot"


def test_rollback_pins_whole_pool(sim: SimulatorServer, context: ActionContext) -> None:
    """A rollback of the capacity type stops when another field of the pool moved since."""
    cluster, pool = pick_pool(sim, provider="aws")
    request = pool_request(
        cluster, pool, "palette.set_capacity_type", {"capacity_type": "spot"},
        {"capacity_type": pool.capacity_type},
    )
    applied = SetCapacityType().apply(request, context)
    resized = pool_request(
        cluster, pool, "palette.resize_pool", {"size": pool.size + 1},
        {"size": pool.size, "min_size": pool.min_size, "max_size": pool.max_size},
    )
    ResizePool().apply(resized, context)

    with pytest.raises(StaleStateError, match=f"size is {pool.size + 1}"):
        SetCapacityType().rollback(request, applied.undo, context)

    assert current_pool(sim, cluster.uid, pool.name).capacity_type == "spot"
    assert len(writes(sim, "PUT")) == 2


def test_capacity_type_needs_aws(sim: SimulatorServer, context: ActionContext) -> None:
    cluster, pool = pick_pool(sim, provider="gcp")
    request = pool_request(
        cluster,
        pool,
        "palette.set_capacity_type",
        {"capacity_type": "spot"},
        {"capacity_type": "on-demand"},
    )

    with pytest.raises(ActionError, match="supports aws and eks"):
        SetCapacityType().apply(request, context)
    assert writes(sim) == []


@pytest.mark.parametrize(
    ("action", "params"),
    [
        (ResizePool, {"size": -1}),
        (ResizePool, {"size": 5, "max_size": 3}),
        (ResizePool, {"size": 1, "extra": True}),
        (SetInstanceType, {"instance_type": "  "}),
        (SetCapacityType, {"capacity_type": "reserved"}),
    ],
)
def test_invalid_params(
    sim: SimulatorServer, context: ActionContext, action: type, params: dict[str, object]
) -> None:
    cluster, pool = pick_pool(sim)
    request = pool_request(cluster, pool, "palette.resize_pool", params, {})

    with pytest.raises(ValidationError):
        action().dry_run(request, context)
    assert writes(sim) == []


def cluster_request(cluster_uid: str, tags: dict[str, str | None], expected: dict) -> ActionRequest:
    return ActionRequest(
        action="palette.tag_cluster",
        scope=ActionScope(kind="cluster", cluster_uid=cluster_uid),
        params={"tags": tags},
        subject_kind="recommendation",
        subject_id="rec-tags",
        expected=expected,
    )


def test_tag_cluster_and_rollback(sim: SimulatorServer, context: ActionContext) -> None:
    cluster = sim.state.fleet.clusters[0]
    tags = {"costwarden.io/idle": None, "env": "sandbox"}
    request = cluster_request(
        cluster.uid, tags, {"labels": {"costwarden.io/idle": None, "env": cluster.labels["env"]}}
    )

    applied = TagCluster().apply(request, context)

    labels = sim.state.fleet.cluster(cluster.uid).labels  # type: ignore[union-attr]
    assert labels["costwarden.io/idle"] == "spectro__tag"
    assert labels["env"] == "sandbox"
    assert labels["team"] == cluster.labels["team"]
    TagCluster().rollback(request, applied.undo, context)
    assert sim.state.fleet.cluster(cluster.uid).labels == cluster.labels  # type: ignore[union-attr]


def test_tag_cluster_refuses_stale_labels(sim: SimulatorServer, context: ActionContext) -> None:
    cluster = sim.state.fleet.clusters[0]
    request = cluster_request(cluster.uid, {"env": "sandbox"}, {"labels": {"env": "other"}})

    with pytest.raises(StaleStateError, match="env is"):
        TagCluster().apply(request, context)
    assert writes(sim) == []


def test_wrong_api_key_is_auth_error(sim: SimulatorServer, tmp_path: Path) -> None:
    cluster, pool = pick_pool(sim)
    request = pool_request(cluster, pool, "palette.resize_pool", {"size": 1}, {})
    settings = action_settings(sim, tmp_path, palette={"api_key": "not-the-key"})

    with ActionContext.from_settings(settings) as context, pytest.raises(PaletteAuthError):
        ResizePool().dry_run(request, context)


def test_server_errors_are_retried_then_raised(sim: SimulatorServer, tmp_path: Path) -> None:
    cluster, pool = pick_pool(sim)
    request = pool_request(cluster, pool, "palette.resize_pool", {"size": 1}, {})
    settings = action_settings(sim, tmp_path)
    faulty = sim.state.faults
    sim.state.faults = type(faulty)(seed=1, rate=1.0, statuses=(500,))

    with ActionContext.from_settings(settings) as context, pytest.raises(PaletteApiError) as caught:
        ResizePool().dry_run(request, context)

    assert caught.value.status == 500
    assert "after 3 attempts" in str(caught.value)
    assert sim.state.stats.faults == 3


def test_rate_limit_is_retried(sim: SimulatorServer, tmp_path: Path) -> None:
    cluster, pool = pick_pool(sim, autoscaling=True)
    request = pool_request(
        cluster, pool, "palette.resize_pool", {"size": pool.min_size}, {"size": pool.size}
    )
    settings = action_settings(sim, tmp_path, palette={"max_retries": 8})
    sim.state.faults = type(sim.state.faults)(seed=3, rate=0.5, statuses=(429,))

    with ActionContext.from_settings(settings) as context:
        ResizePool().apply(request, context)

    assert current_pool(sim, cluster.uid, pool.name).size == pool.min_size
    assert sim.state.stats.faults > 0


def change_pool_in_palette(
    sim: SimulatorServer, cluster_uid: str, pool_name: str, *, size: int, instance_type: str
) -> None:
    """Change a pool behind costwarden's back, as someone using the Palette console would."""
    cluster = sim.state.fleet.cluster(cluster_uid)
    assert cluster is not None
    pool = current_pool(sim, cluster_uid, pool_name)
    path = (f"/v1/cloudconfigs/{cluster.cloud_type}/{cluster.cloud_config_uid}"
            f"/machinePools/{pool_name}")
    body = {
        "cloudConfig": {"instanceType": instance_type, "capacityType": pool.capacity_type},
        "poolConfig": {"name": pool_name, "labels": ["worker"], "size": size,
                       "minSize": min(pool.min_size, size), "maxSize": max(pool.max_size, size),
                       "isControlPlane": pool.is_control_plane},
    }
    response = httpx.put(f"{sim.url}{path}", json=body, headers={"ApiKey": sim.api_key})
    assert response.status_code == 204, response.text


def test_pinned_pool_state_catches_other_fields(
    sim: SimulatorServer, context: ActionContext
) -> None:
    """A spot change pinned to the whole pool state refuses after the size and instance type
    changed, naming both fields, although its own field is unchanged."""
    cluster, pool = pick_pool(sim, provider="aws")
    probe = pool_request(cluster, pool, "palette.set_capacity_type", {"capacity_type": "spot"}, {})
    before = SetCapacityType().dry_run(probe, context).before
    pinned = expected_state("palette.set_capacity_type", before)
    assert pinned is not None
    assert set(pinned) == {"size", "min_size", "max_size", "instance_type", "capacity_type"}
    request = pool_request(cluster, pool, "palette.set_capacity_type", {"capacity_type": "spot"},
                           pinned)
    other_type = "m5.4xlarge" if pool.instance_type != "m5.4xlarge" else "m5.2xlarge"
    change_pool_in_palette(sim, cluster.uid, pool.name, size=pool.size + 2,
                           instance_type=other_type)

    with pytest.raises(StaleStateError) as caught:
        SetCapacityType().apply(request, context)

    message = str(caught.value)
    assert f"size is {pool.size + 2}" in message
    assert f"instance_type is {other_type!r}" in message
    assert current_pool(sim, cluster.uid, pool.name).capacity_type == pool.capacity_type
    assert writes(sim, "PUT") == [writes(sim, "PUT")[0]]


def test_pinned_cluster_labels_catch_new_label(
    sim: SimulatorServer, context: ActionContext
) -> None:
    cluster = sim.state.fleet.clusters[0]
    probe = cluster_request(cluster.uid, {"costwarden.io/idle": None}, {})
    pinned = expected_state("palette.tag_cluster", TagCluster().dry_run(probe, context).before)
    assert pinned == {"cluster_labels": dict(cluster.labels)}
    request = cluster_request(cluster.uid, {"costwarden.io/idle": None}, pinned)
    relabelled = {**cluster.labels, "costwarden-test/owner": "finance"}
    response = httpx.patch(
        f"{sim.url}/v1/spectroclusters/{cluster.uid}/metadata",
        json={"metadata": {"labels": relabelled}}, headers={"ApiKey": sim.api_key},
    )
    assert response.status_code == 204

    with pytest.raises(StaleStateError, match="costwarden-test/owner is 'finance'"):
        TagCluster().apply(request, context)
    assert sim.state.fleet.cluster(cluster.uid).labels == relabelled  # type: ignore[union-attr]
