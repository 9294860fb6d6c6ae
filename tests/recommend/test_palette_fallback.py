"""Pool recommendations from Palette alone, when no Prometheus is configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from costwarden.config import load_settings
from costwarden.pipeline import run_pass
from costwarden.recommend.palette_pools import price_catalog, read_palette_pools
from costwarden.recommend.palette_usage import cluster_cpu_peaks, idle_clusters, palette_bundle
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.sources.palette.client import PaletteClient
from costwarden.store import Store
from costwarden.store.tables import UsageFact

AS_OF = datetime(2026, 11, 15, 10, tzinfo=UTC)
PRODUCTION = {"prod", "production"}


@pytest.fixture(scope="module")
def simulator():
    with SimulatorServer(SimulatorSettings(seed=7, as_of=AS_OF.isoformat())) as server:
        yield server


@pytest.fixture(scope="module")
def palette_pass(simulator, tmp_path_factory):
    """One pass on the simulator without Prometheus: its store, settings and result."""
    path = tmp_path_factory.mktemp("fallback") / "costwarden.db"
    settings = load_settings(
        palette={"url": simulator.url, "api_key": simulator.api_key},
        database_url=f"sqlite:///{path}",
        anomaly={"enabled": False},
    )
    store = Store.open(settings.database_url)
    result = run_pass(store, settings, [], AS_OF)
    yield store, settings, result
    store.close()


def _labels(pool):
    return dict(pool.cluster_labels)


def test_fallback_spot_for_non_production(palette_pass, simulator):
    _, settings, result = palette_pass
    outcome = result.recommendations

    assert outcome.source == "palette"
    assert "prometheus.url" in outcome.note
    spot = [item for item in outcome.items if item.kind == "spot"]
    assert spot

    with PaletteClient(settings.palette) as client:
        pools = {(p.cluster, p.name): p for p in read_palette_pools(client)}
    for item in spot:
        pool = pools[(item.target.cluster, item.target.pool)]
        assert _labels(pool).get("env") not in PRODUCTION
        assert pool.capacity_types == ("on-demand",)
        assert not pool.is_control_plane
        assert not pool.name.startswith("system")
        assert item.confidence == "low"
        assert item.savings.per_day > 0
        assert item.ui_link and pool.cluster_uid in item.ui_link
        if pool.provider == "gcp":
            assert item.api_call is None
            assert item.manual_change
            continue
        call = item.api_call
        assert call.complete
        assert call.method == "PUT"
        assert call.path == (
            f"/v1/cloudconfigs/{pool.cloud_type}/{pool.config_uid}/machinePools/{pool.name}"
        )
        expected = {"capacityType": "spot"} if pool.provider == "aws" else {"spotVMOptions": {}}
        assert call.body["cloudConfig"] == {"instanceType": pool.instance_type, **expected}


def test_every_eligible_pool_gets_a_spot_proposal(palette_pass):
    _, settings, result = palette_pass
    proposed = {(i.target.cluster, i.target.pool) for i in result.recommendations.items}

    with PaletteClient(settings.palette) as client:
        pools = read_palette_pools(client)
    eligible = {
        (pool.cluster, pool.name)
        for pool in pools
        if _labels(pool).get("env") not in PRODUCTION
        and pool.capacity_types == ("on-demand",)
        and not pool.is_control_plane
        and not pool.name.startswith("system")
        and (pool.size or 0) > 0
    }
    assert eligible and eligible <= proposed


def test_idle_cluster_worker_pools_are_scaled_to_zero(palette_pass):
    store, settings, _ = palette_pass
    with PaletteClient(settings.palette) as client:
        pools = read_palette_pools(client)
    quiet = next(p for p in pools if p.cluster == "shop-checkout-dev")
    with store.transaction() as session:
        session.execute(
            update(UsageFact)
            .where(UsageFact.scope_kind == "cluster", UsageFact.scope_id == quiet.cluster_uid)
            .values(value=0.1)
        )
        peaks = cluster_cpu_peaks(session, AS_OF, 7)

    bundle = palette_bundle(pools, price_catalog(settings), AS_OF, settings)
    found = idle_clusters(bundle, peaks, max_cpu_percent=5)

    workers = [p for p in pools if p.cluster == quiet.cluster and not p.is_control_plane]
    assert {item.target.pool for item in found} == {pool.name for pool in workers}
    for item in found:
        pool = next(p for p in workers if p.name == item.target.pool)
        price = bundle.prices.instance_price(pool.provider, pool.region, pool.instance_type)
        assert item.savings.per_day == pytest.approx(
            Decimal(pool.size) * price.usd_per_hour * 24, rel=Decimal("0.001")
        )
        assert item.after == {"size": 0, "minSize": 0}
        assert item.api_call.complete


def test_idle_needs_enough_days(palette_pass):
    store, settings, _ = palette_pass
    with PaletteClient(settings.palette) as client:
        pools = read_palette_pools(client)
    quiet = next(p for p in pools if p.cluster == "shop-checkout-dev")
    short = {quiet.cluster_uid: {AS_OF.date() - timedelta(days=1): 0.1}}

    bundle = palette_bundle(pools, price_catalog(settings), AS_OF, settings)
    assert idle_clusters(bundle, short, max_cpu_percent=5) == []


def test_recommend_command_falls_back_to_palette(simulator, palette_pass):
    _, settings, _ = palette_pass
    env = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    env |= {
        "COSTWARDEN_PALETTE_URL": simulator.url,
        "COSTWARDEN_PALETTE_API_KEY": simulator.api_key,
        "COSTWARDEN_DATABASE_URL": settings.database_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "costwarden", "recommend", "--end", AS_OF.isoformat(), "--json",
         "--cluster", "ds-airflow-dev", "--cluster", "payments-prod"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert items and {item["target"]["cluster"] for item in items} == {"ds-airflow-dev"}
    assert {item["kind"] for item in items} == {"spot"}
    assert all(item["api_call"]["complete"] for item in items)
    assert "prometheus.url" in result.stderr
